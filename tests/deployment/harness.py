"""A real Airflow 3 deployment for the deployment tests, started and stopped from pytest.

What runs, each as its own process (its own process group, its output in a log file of the
deployment's temporary directory):

- PostgreSQL from the Debian package (``initdb`` / ``pg_ctl``), as the ``postgres`` system user when
  the tests run as root (PostgreSQL refuses root), on 127.0.0.1 and a free port, in a throwaway cluster;
- ``airflow db migrate``, then ``airflow scheduler`` (LocalExecutor), ``airflow dag-processor``,
  ``airflow triggerer`` and ``airflow api-server`` against it, with ``example_dags/`` as the DAGs folder;
- the HubSpot simulator from its command line (``hubspot-simulator --port 0 ...``).

The tests talk to Airflow only through its public REST API (``/api/v2``), as a user or another system
would: `AirflowAPI`. Every wait here is bounded; `Deployment.stop` ends every process group
(SIGTERM, then SIGKILL) whatever happened before.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO_ROOT / "example_dags"
HOW_TO_RUN = ("the deployment tests need PostgreSQL's server binaries (initdb, pg_ctl): "
              "`apt-get install -y postgresql` (Debian/Ubuntu; CI's .ci/run does this), then `make test`")

T = TypeVar("T")


class DeploymentError(RuntimeError):
    """The deployment could not be started, or a wait ran out; the message carries the log tails."""


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.5,
             diagnose: Callable[[], str] | None = None) -> T:
    """Call `probe` until it returns something other than None/False; raise after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = probe()
            if value is not None and value is not False:
                return value
        except DeploymentError:
            raise
        except Exception as problem:  # noqa: BLE001 - a probe that fails is retried until the deadline
            last_error = problem
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            extra = f"\n{diagnose()}" if diagnose else ""
            raise DeploymentError(f"timed out after {timeout:.0f} s waiting for {what}{detail}{extra}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as problem:
        return f"(cannot read {path}: {problem})"
    return "\n".join(text[-lines:])


# --------------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------------


def find_postgres_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres: from PATH, else Debian's /usr/lib/postgresql/N/bin."""
    candidates: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                      if Path(p).parent.name.isdigit() else 0, reverse=True)
    candidates += [Path(p) for p in versions]
    for bindir in candidates:
        if all((bindir / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


def postgres_unavailable_reason() -> str | None:
    """Why a PostgreSQL cluster cannot be started here (None: it can)."""
    if find_postgres_bindir() is None:
        return f"PostgreSQL is not installed: {HOW_TO_RUN}"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return f"running as root but there is no 'postgres' system user to run PostgreSQL as: {HOW_TO_RUN}"
        if not shutil.which("runuser") and not shutil.which("setpriv"):
            return "running as root and neither runuser nor setpriv is available to run PostgreSQL as 'postgres'"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 is not installed: install the test extra (`make test` does: .ci/requirements.lock)"
    return None


class Postgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1:<free port>, trust auth on loopback only."""

    def __init__(self, root: Path) -> None:
        self.bindir = find_postgres_bindir()
        if self.bindir is None:
            raise DeploymentError(HOW_TO_RUN)
        self.root = root
        self.data = root / "data"
        self.log = root / "postgres.log"
        self.port = free_port()
        self.user = "postgres"
        self.database = "airflow"
        self._as_postgres: list[str] = []
        self._uid: int | None = None
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            self._uid = entry.pw_uid
            if shutil.which("runuser"):
                self._as_postgres = ["runuser", "-u", "postgres", "--"]
            else:
                self._as_postgres = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}",
                                     "--init-groups", "--"]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        command = [*self._as_postgres, *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.root,
                                env={**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"})
        if result.returncode:
            raise DeploymentError(f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n"
                                  f"{result.stderr}\n{tail(self.log)}")
        return result

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._uid is not None:
            entry = pwd.getpwuid(self._uid)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        os.chmod(self.root, 0o700)
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user, "-A", "trust",
                  "-E", "UTF8", "--no-locale", "--no-instructions", "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "60", "start", timeout=90)
        self._run(str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
                  self.database, timeout=60)
        # A second database on the same server: the warehouse the reverse-sync example reads from.
        self._run(str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
                  self.warehouse, timeout=60)

    warehouse = "warehouse"

    def connection_json(self, database: str) -> str:
        """An Airflow connection (common-sql's postgres provider) to `database` on this server."""
        return json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": self.port, "login": self.user,
                           "schema": database})

    def execute(self, database: str, statement: str, rows: list[tuple] | None = None) -> list[tuple]:
        """Run one statement (with `rows`: once per row) in `database`; the rows it returns."""
        import psycopg2

        with psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname=database) as connection, \
                connection.cursor() as cursor:
            if rows is not None:
                cursor.executemany(statement, rows)
                return []
            cursor.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def stop(self) -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop",
                      timeout=45)
        except (DeploymentError, subprocess.TimeoutExpired):
            try:
                pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
                os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError, IndexError):
                pass


# --------------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------------


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM the whole process group, wait up to `grace` seconds, then SIGKILL it."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace)
        # Whatever is left of the group (task processes, log servers, gunicorn/uvicorn workers).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


def _airflow_command(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "airflow"
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "airflow", *args]


def _simulator_command(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "hubspot-simulator"
    return [str(script), *args] if script.exists() else \
        [sys.executable, "-m", "airflow_provider_appointments.simulator", *args]


# --------------------------------------------------------------------------------------------------
# The REST API client
# --------------------------------------------------------------------------------------------------


class AirflowAPI:
    """A small client of Airflow 3's public REST API (``/api/v2``) with a JWT from ``POST /auth/token``.

    Airflow 3's default auth manager (SimpleAuthManager) issues a JWT for a configured user's
    username and password; every API call then sends it as a bearer token.
    """

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._password = password
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False
        self._token: str | None = None

    def login(self) -> None:
        response = self.session.post(f"{self.base_url}/auth/token", timeout=self.timeout,
                                     json={"username": self.username, "password": self._password})
        if response.status_code not in (200, 201):
            raise DeploymentError(f"POST /auth/token answered {response.status_code}: {response.text[:500]}")
        self._token = response.json()["access_token"]

    def request(self, method: str, path: str, *, expect: Iterable[int] = (200,), **kwargs: Any) -> requests.Response:
        if self._token is None:
            self.login()
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self._token}", **kwargs.pop("headers", {})}
            response = self.session.request(method, f"{self.base_url}/api/v2{path}", headers=headers,
                                            timeout=self.timeout, **kwargs)
            if response.status_code == 401 and attempt == 1:
                self.login()  # an expired token: log in again once
                continue
            break
        if response.status_code not in tuple(expect):
            raise DeploymentError(f"{method} /api/v2{path} answered {response.status_code}: {response.text[:2000]}")
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    # What the tests use ---------------------------------------------------------------------------

    def health(self) -> dict:
        return self.get("/monitor/health")

    def dag_ids(self) -> set[str]:
        return {dag["dag_id"] for dag in self.get("/dags", params={"limit": 100})["dags"]}

    def import_errors(self) -> list[dict]:
        return self.get("/importErrors", params={"limit": 100})["import_errors"]

    def set_paused(self, dag_id: str, paused: bool) -> dict:
        return self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": paused}).json()

    def ensure_pool(self, name: str, slots: int, description: str = "") -> dict:
        response = self.request("POST", "/pools", expect=(200, 201, 409),
                                json={"name": name, "slots": slots, "description": description,
                                      "include_deferred": False})
        if response.status_code == 409:
            return self.request("PATCH", f"/pools/{name}", json={"name": name, "slots": slots}).json()
        return response.json()

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        """A manual run without a logical date (Airflow 3's default for manual runs); returns its run id."""
        body = {"logical_date": None, "conf": conf or {}}
        return self.request("POST", f"/dags/{dag_id}/dagRuns", json=body, expect=(200, 201)).json()["dag_run_id"]

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})["task_instances"]

    def task_instance(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict:
        suffix = f"/{map_index}" if map_index >= 0 else ""
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}{suffix}")

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict]:
        suffix = f"/{map_index}" if map_index >= 0 else ""
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}{suffix}/tries")["task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        response = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
                                params={"map_index": map_index, "deserialize": True}, expect=(200, 404))
        return response.json()["value"] if response.status_code == 200 else None

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        """The task's log for one try, one line per entry (structured entries as JSON)."""
        response = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
                                params={"full_content": True, "map_index": map_index},
                                headers={"Accept": "application/json"}, expect=(200, 404))
        if response.status_code == 404:
            return ""
        return "\n".join(render_log_entry(entry) for entry in response.json().get("content", []))

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float,
                     diagnose: Callable[[], str] | None = None) -> dict:
        """Poll the run until it is finished (success or failed); raise after `timeout` seconds."""
        def finished() -> dict | None:
            run = self.dag_run(dag_id, run_id)
            return run if run["state"] in ("success", "failed") else None
        return wait_for(f"{dag_id} run {run_id} to finish", finished, timeout, interval=1.0,
                        diagnose=lambda: self.describe_run(dag_id, run_id) + (diagnose() if diagnose else ""))

    def describe_run(self, dag_id: str, run_id: str) -> str:
        """The run's task instances and the tail of each failed one's log: what a failing test shows."""
        try:
            lines = [f"{dag_id} {run_id}: {self.dag_run(dag_id, run_id)['state']}"]
            for ti in sorted(self.task_instances(dag_id, run_id), key=lambda t: (t["task_id"], t["map_index"])):
                name = ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else "")
                lines.append(f"  {name}: {ti['state']} (try {ti['try_number']})")
                if ti["state"] in ("failed", "up_for_retry", "upstream_failed") and ti["try_number"]:
                    log = self.task_log(dag_id, run_id, ti["task_id"], ti["try_number"], ti["map_index"])
                    lines += ["    | " + line for line in log.splitlines()[-25:]]
            return "\n".join(lines)
        except Exception as problem:  # noqa: BLE001 - diagnostics must not hide the original failure
            return f"(could not describe {dag_id} {run_id}: {problem!r})"


def render_log_entry(entry: Any) -> str:
    """One structured task-log entry as one readable line: time, level, event, and any exception."""
    if isinstance(entry, str):
        return entry
    line = " ".join(str(entry[key]) for key in ("timestamp", "level", "event") if entry.get(key) is not None)
    for error in entry.get("error_detail") or []:
        frames = error.get("frames") or []
        where = f" (at {frames[-1]['filename']}:{frames[-1]['lineno']})" if frames else ""
        line += f" | {error.get('exc_type')}: {error.get('exc_value')}{where}"
    return line


# --------------------------------------------------------------------------------------------------
# The deployment
# --------------------------------------------------------------------------------------------------


@dataclass
class Deployment:
    """PostgreSQL + Airflow's four components + the HubSpot simulator, in one temporary directory."""

    seed_appointments: int = 3000
    search_lag_s: float = 2.0
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hubspot-deployment-")))
    services: list[Service] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home = self.root / "airflow-home"
        self.logs = self.root / "process-logs"
        self.data = self.root / "data"
        for path in (self.home, self.logs, self.data):
            path.mkdir(parents=True, exist_ok=True)
        # PostgreSQL's directory must belong to the postgres user: a sibling of the root, not inside it
        # (the root is private to the user running the tests).
        self.postgres = Postgres(Path(tempfile.mkdtemp(prefix="hubspot-deployment-pg-")))
        # A token nobody else uses, so finding it in a log can only mean that log leaked it.
        self.hubspot_token = f"pat-na1-deploy-{secrets.token_hex(16)}"
        self.admin_password = secrets.token_urlsafe(18)
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.simulator_url = ""
        self.env: dict[str, str] = {}
        self.api = AirflowAPI(self.api_url, "admin", self.admin_password)

    # Start ------------------------------------------------------------------------------------------

    def start(self) -> Deployment:
        started = time.monotonic()
        self.postgres.start()
        self.timings["postgres"] = time.monotonic() - started
        self._start_simulator()
        self.env = self._environment()
        mark = time.monotonic()
        with open(self.logs / "db-migrate.log", "wb") as log:
            result = subprocess.run(_airflow_command("db", "migrate"), stdout=log, stderr=subprocess.STDOUT,
                                    env=self.env, cwd=self.home, timeout=300)
        if result.returncode:
            raise DeploymentError(f"airflow db migrate exited {result.returncode}:\n"
                                  f"{tail(self.logs / 'db-migrate.log')}")
        self.timings["db migrate"] = time.monotonic() - mark
        mark = time.monotonic()
        self._spawn("api-server", _airflow_command("api-server", "--host", "127.0.0.1", "--port",
                                                   str(self.api_port), "--workers", "1"))
        self._spawn("scheduler", _airflow_command("scheduler"))
        self._spawn("dag-processor", _airflow_command("dag-processor"))
        self._spawn("triggerer", _airflow_command("triggerer"))
        wait_for("the api-server to answer", self._api_up, timeout=120, diagnose=self.diagnose)
        wait_for("scheduler, dag-processor and triggerer to report healthy", self._components_healthy,
                 timeout=120, interval=1.0, diagnose=self.diagnose)
        self.timings["components healthy"] = time.monotonic() - mark
        wanted = {"hubspot_appointments_lifecycle", "hubspot_appointments_bulk_backfill",
                  "hubspot_appointments_warehouse_load", "hubspot_appointments_on_new_extract",
                  "hubspot_appointments_reverse_sync"}
        wait_for("the dag-processor to parse the example DAGs", lambda: wanted <= self._parsed_dags(),
                 timeout=180, interval=2.0, diagnose=self.diagnose)
        self.timings["dags parsed"] = time.monotonic() - mark
        self.timings["start total"] = time.monotonic() - started
        return self

    def _start_simulator(self) -> None:
        log_path = self.logs / "simulator.log"
        command = _simulator_command("--port", "0", "--seed-appointments", str(self.seed_appointments),
                                     "--search-lag-ms", "0", "--token", self.hubspot_token)
        service = self._spawn("simulator", command, env={**_clean_environment(), "PYTHONUNBUFFERED": "1"},
                              log=log_path)

        def listening() -> str | None:
            if not service.alive():
                raise DeploymentError(f"the simulator exited {service.process.returncode}:\n{tail(log_path)}")
            first = log_path.read_text(errors="replace").splitlines()[:1]
            prefix = "HubSpot simulator listening on "
            return first[0][len(prefix):].strip() if first and first[0].startswith(prefix) else None

        self.simulator_url = wait_for("the simulator to print its URL", listening, timeout=60, interval=0.2)
        wait_for("the simulator's health endpoint", lambda: self.simulator("GET", "health")["status"] == "ok",
                 timeout=30, interval=0.2)

    def _environment(self) -> dict[str, str]:
        from cryptography.fernet import Fernet

        passwords = self.home / "simple_auth_manager_passwords.json"
        passwords.write_text(json.dumps({"admin": self.admin_password}))
        passwords.chmod(0o600)
        return {
            **_clean_environment(),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "6",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            # Workers reach the api-server's Execution API with JWTs signed with this secret; every
            # component that signs or checks tokens (scheduler, api-server) must share it.
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            # Airflow 3's default auth manager with one admin whose password the harness chose.
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            # Only manual runs: unpausing the warehouse load (catchup=True, daily since 2026-11-01) must
            # not queue a month of scheduled runs ahead of the run under test (max_active_runs=1).
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "60",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "120",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            # Log servers on free ports, so two deployments on one machine do not collide.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW_CONN_HUBSPOT_DEFAULT": json.dumps({"conn_type": "hubspot", "host": self.simulator_url,
                                                        "password": self.hubspot_token,
                                                        "extra": {"api_version": "2026-03"}}),
            "AIRFLOW_CONN_HUBSPOT_WAREHOUSE": self.postgres.connection_json(self.postgres.warehouse),
            # The warehouse-load example merges into PostgreSQL here (the demo's is a DuckDB file).
            "HUBSPOT_APPOINTMENTS_WAREHOUSE_CONN": "hubspot_warehouse",
            "HUBSPOT_APPOINTMENTS_DATA_DIR": str(self.data),
            "HUBSPOT_APPOINTMENTS_SEARCH_LAG_S": str(self.search_lag_s),
            "PYTHONWARNINGS": "ignore::DeprecationWarning,ignore::FutureWarning",
        }

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None,
               log: Path | None = None) -> Service:
        log = log or self.logs / f"{name}.log"
        with open(log, "wb") as handle:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
                                       env=env or self.env, cwd=self.home, start_new_session=True)
        service = Service(name, process, log)
        self.services.append(service)
        return service

    def restart_scheduler(self, *, job_schedule: bool) -> None:
        """Replace the scheduler by one that does (or does not) create scheduled and asset-triggered runs.

        The deployment starts with ``use_job_schedule`` off, so that unpausing the warehouse load
        (catchup since 2026-11-01) queues no month of runs; Airflow creates asset-triggered runs only with
        it on. Pause the DAGs that must not be scheduled before turning it on."""
        for service in [service for service in self.services if service.name.startswith("scheduler")]:
            service.stop()
            self.services.remove(service)
        name = "scheduler-with-job-schedule" if job_schedule else "scheduler"
        env = {**self.env, "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(job_schedule)}
        self._spawn(name, _airflow_command("scheduler"), env=env, log=self.logs / f"{name}.{time.time_ns()}.log")

    def check_alive(self) -> None:
        """Raise if a long-running component has exited."""
        for service in self.services:
            if not service.alive():
                raise DeploymentError(f"{service.name} exited {service.process.returncode}:\n{tail(service.log)}")

    def _api_up(self) -> bool:
        self.check_alive()
        try:
            return requests.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def _components_healthy(self) -> bool:
        self.check_alive()
        health = self.api.health()
        return all((health.get(part) or {}).get("status") == "healthy"
                   for part in ("metadatabase", "scheduler", "triggerer", "dag_processor"))

    def _parsed_dags(self) -> set[str]:
        self.check_alive()
        return self.api.dag_ids()

    # Use --------------------------------------------------------------------------------------------

    def simulator(self, method: str, action: str, payload: dict | None = None, **params: Any) -> Any:
        """Call the simulator's admin endpoint ``/_simulator/{action}``."""
        response = requests.request(method, f"{self.simulator_url}/_simulator/{action}", json=payload,
                                    params=params or None, timeout=120)
        response.raise_for_status()
        return response.json()

    def hubspot(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the simulator's HubSpot API with the private-app token, as a HubSpot client would."""
        response = requests.request(method, f"{self.simulator_url}{path}", timeout=60,
                                    headers={"Authorization": f"Bearer {self.hubspot_token}"}, **kwargs)
        response.raise_for_status()
        return response.json()

    def appointments(self) -> list[dict]:
        """Every active (not archived) appointment in the simulator, all properties and associations."""
        everything = self.simulator("GET", "state", include="appointments")["appointments"]
        return [appointment for appointment in everything if not appointment.get("archived")]

    def process_logs(self) -> dict[str, Path]:
        return {path.name: path for path in sorted(self.logs.glob("*.log"))}

    def task_log_files(self) -> list[Path]:
        return sorted(path for path in (self.home / "logs").rglob("*") if path.is_file())

    def diagnose(self) -> str:
        parts = [f"deployment directory: {self.root}"]
        for service in self.services:
            state = "running" if service.alive() else f"exited {service.process.returncode}"
            parts.append(f"--- {service.name} ({state}), last lines of {service.log}:\n{tail(service.log, 25)}")
        return "\n".join(parts)

    # Stop -------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """End every process group (Airflow components first, then the simulator), then PostgreSQL."""
        order = {"scheduler": 0, "triggerer": 1, "dag-processor": 2, "api-server": 3, "simulator": 4}
        for service in sorted(self.services, key=lambda s: order.get(s.name, 9)):
            service.stop()
        self.postgres.stop()

    def cleanup(self) -> None:
        shutil.rmtree(self.postgres.root, ignore_errors=True)
        shutil.rmtree(self.root, ignore_errors=True)


def _clean_environment() -> dict[str, str]:
    """This process's environment without any Airflow setting or connection (the test session sets some)."""
    return {key: value for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW", "HUBSPOT_APPOINTMENTS_", "PYTEST_"))}


def processes_matching(fragment: str) -> list[Any]:
    """Processes whose command line (as set by setproctitle, too) contains `fragment`."""
    import psutil

    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if fragment in cmdline:
            found.append(process)
    return found
