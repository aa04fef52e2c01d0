"""Test session setup: an isolated Airflow home with a SQLite metadata DB, and a DAG runner.

Airflow reads its configuration when first imported, so the environment is set here, at import
time, before any test module imports Airflow.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="hubspot-provider-airflow-home-"))
_DAGS_FOLDER = _AIRFLOW_HOME / "dags"
_DAGS_FOLDER.mkdir()
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_DAGS_FOLDER)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "INFO"
os.environ.pop("AIRFLOW_CONN_HUBSPOT_DEFAULT", None)

REPO_ROOT = Path(__file__).resolve().parent.parent

# The simulator's fixtures (hubspot_simulator, hubspot_simulator_factory) are opt-in, as in users' projects.
pytest_plugins = ["airflow_provider_appointments.simulator.pytest_plugin"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", help="run the long reliability soak tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--soak"):
        return
    skip_soak = pytest.mark.skip(reason="soak test: run with --soak")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip_soak)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Create the SQLite metadata DB once per test session; returns AIRFLOW_HOME."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return _AIRFLOW_HOME


class DagRunResult:
    """What a test needs from one `dag.test()` run: its state and each task's XCom return value."""

    def __init__(self, dag_run: Any) -> None:
        self.dag_run = dag_run
        self.state = str(dag_run.state)

    def task_states(self) -> dict[str, str]:
        return {
            (ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"): str(ti.state)
            for ti in self.dag_run.get_task_instances()
        }

    def xcom(self, task_id: str, map_index: int | None = None, key: str = "return_value") -> Any:
        """The XCom a task pushed (for a mapped task, pass its map_index)."""
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            query = XComModel.get_many(
                key=key,
                run_id=self.dag_run.run_id,
                dag_ids=self.dag_run.dag_id,
                task_ids=task_id,
                map_indexes=map_index if map_index is not None else -1,
            )
            row = session.execute(query.with_only_columns(XComModel.value)).first()
        return XComModel.deserialize_value(row) if row is not None else None


@pytest.fixture
def run_dag(airflow_db: Path) -> Iterator[Callable[..., DagRunResult]]:
    """Run a DAG file for real with `dag.test()` against the session's SQLite metadata DB.

    `dag.test()` in Airflow 3 serialises the DAG from its bundle, so the file is copied into the
    DAGs folder first. Usage: ``result = run_dag(path, dag_id, logical_date=..., run_conf=...)``.
    """
    copied: list[Path] = []

    def _run(dag_file: Path, dag_id: str, **test_kwargs: Any) -> DagRunResult:
        target = _DAGS_FOLDER / dag_file.name
        shutil.copyfile(dag_file, target)
        copied.append(target)
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(target))
        assert not bag.import_errors, bag.import_errors
        dag = bag.dags.get(dag_id)
        assert dag is not None, f"{dag_file} defines no DAG {dag_id!r}"
        return DagRunResult(dag.test(**test_kwargs))

    yield _run
    for target in copied:
        target.unlink(missing_ok=True)


class _Tee(io.TextIOBase):
    """A text stream that keeps a copy of everything written and passes it on."""

    def __init__(self, target: Any) -> None:
        self.copy = io.StringIO()
        self._target = target

    def write(self, text: str) -> int:
        self.copy.write(text)
        target = self._target if self._target is not None else sys.stdout
        return target.write(text)

    def flush(self) -> None:
        target = self._target if self._target is not None else sys.stdout
        target.flush()


class LogText:
    """What a test logged: stdlib records (via caplog, DEBUG and up) plus what Airflow's own structlog
    loggers (the task runner, ``self.log`` of operators) printed to the console / task log."""

    def __init__(self, caplog: pytest.LogCaptureFixture, tee: _Tee) -> None:
        self._caplog = caplog
        self._tee = tee

    @property
    def stdlib(self) -> str:
        return self._caplog.text

    @property
    def airflow(self) -> str:
        return self._tee.copy.getvalue()

    @property
    def text(self) -> str:
        return self.stdlib + self.airflow


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Iterator[LogText]:
    """Capture every log line of the test, robustly.

    Airflow configures logging when it is first imported and then *replaces the root handlers*, so a
    caplog handler attached before that import silently records nothing. Import it here, during setup
    (pytest attaches the call-phase caplog handler afterwards). Airflow's structlog loggers bypass the
    stdlib handlers altogether (they write to a stream of their own), so that stream is teed as well.
    Tests should still assert that a line they know is logged was captured.
    """
    import airflow.sdk.log  # noqa: F401  (configures Airflow's logging now, before capture starts)
    import structlog

    factory = structlog.get_config()["logger_factory"]
    assert hasattr(factory, "io"), f"unexpected structlog logger factory {factory!r}; update captured_logs"
    tee = _Tee(factory.io)
    monkeypatch.setattr(factory, "io", tee)
    caplog.set_level(logging.DEBUG)
    yield LogText(caplog, tee)
