# Benchmarks print figures; they are run with `make bench`, never collected by the test suite.
collect_ignore_glob = ["*.py"]
