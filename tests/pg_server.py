"""A real PostgreSQL server for the store's tests: ``initdb`` into a temporary directory, ``pg_ctl start`` on a
unix socket in it (no TCP port), one fresh database per test, the server stopped at the end of the session.

Where it cannot run (no PostgreSQL binaries, no psycopg, the server does not start) the tests that use it skip
and say why. Under pytest-xdist each worker starts its own server in its own directory. Run as root (a
container), the server runs as an unprivileged user (``postgres``, else ``nobody``): PostgreSQL refuses root.

    def test_x(pg_url): MeasurementStore(pg_url) ...      # postgresql:///t_<n>?host=<socket dir>&user=hwnas
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

SEARCH = [os.environ.get("HWNAS_PG_BIN", ""), "/usr/local/bin", *sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                                                                        reverse=True)]


def _binaries() -> tuple[Path, Path] | str:
    for d in filter(None, map(str, SEARCH)):
        initdb, pg_ctl = Path(d) / "initdb", Path(d) / "pg_ctl"
        if initdb.exists() and pg_ctl.exists():
            return initdb, pg_ctl
    found = shutil.which("initdb"), shutil.which("pg_ctl")
    if all(found):
        return Path(found[0]), Path(found[1])
    return "no PostgreSQL server binaries (initdb, pg_ctl) on this machine"


class Server:
    def __init__(self, root: Path, pg_ctl: Path, user: str | None):
        self.root, self.pg_ctl, self.user = root, pg_ctl, user
        self.names = itertools.count()

    @property
    def admin_url(self) -> str:
        return f"postgresql:///postgres?host={self.root}&user=hwnas"

    def url(self, db: str) -> str:
        return f"postgresql:///{db}?host={self.root}&user=hwnas"

    def new_database(self) -> str:
        import psycopg

        name = f"t{os.getpid()}_{next(self.names)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        subprocess.run([str(self.pg_ctl), "-D", str(self.root / "data"), "-m", "immediate", "stop"], user=self.user,
                       capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


def start_server(durable: bool = False) -> Server | str:
    """A running server, or why there is none. ``durable``: PostgreSQL's defaults (fsync on, as a real team store
    runs: benchmarks/store.py); else fsync off (tests: faster, and nothing there has to survive a power cut)."""
    found = _binaries()
    if isinstance(found, str):
        return found
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'hwnas[postgres]')"
    initdb, pg_ctl = found
    user = None
    root = Path(tempfile.mkdtemp(prefix="hwnas-pg-"))  # short: a unix socket path is at most ~100 characters
    if os.geteuid() == 0:
        import pwd

        for name in ("postgres", "nobody"):
            try:
                pw = pwd.getpwnam(name)
            except KeyError:
                continue
            user = name
            os.chown(root, pw.pw_uid, pw.pw_gid)
            break
        else:
            return "running as root and there is no unprivileged user to run PostgreSQL as"
    run = dict(user=user, capture_output=True, text=True, timeout=120)
    r = subprocess.run([str(initdb), "-D", str(root / "data"), "-U", "hwnas", "--auth=trust", "-E", "UTF8",
                        *([] if durable else ["--no-sync"])], **run)
    if r.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        return f"initdb failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}"
    opts = f"-k {root} -c listen_addresses='' -c max_connections=100" + ("" if durable else " -c fsync=off")
    r = subprocess.run([str(pg_ctl), "-D", str(root / "data"), "-l", str(root / "log"), "-w", "-t", "60",
                        "-o", opts, "start"], **run)
    if r.returncode != 0:
        log = (root / "log").read_text(errors="replace") if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        return f"the PostgreSQL server did not start: {(log or r.stderr).strip().splitlines()[-1:]}"
    return Server(root, pg_ctl, user)


@pytest.fixture(scope="session")
def pg_server():
    server = start_server()
    if isinstance(server, str):
        import warnings

        why = f"no PostgreSQL server for these tests: {server}"
        warnings.warn(why, pytest.PytestWarning)  # in the summary even without -rs (a skip's reason is not)
        pytest.skip(why)
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server) -> str:
    """A URL of a fresh, empty database on the session's server."""
    return pg_server.new_database()
