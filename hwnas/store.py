"""The measurement store: one SQLite file (WAL mode) or a PostgreSQL database (a team store), schema versioned,
one row per measurement.

A measurement is keyed by (space, arch id, device, runtime, settings). Re-profiling an arch appends a new
row; ``query(latest=True)`` returns the newest row per key, ``latest=False`` every row. Every write is one
transaction, so a crash or Ctrl-C in the middle of a run loses at most the measurement being written.

Location: an explicit path or ``postgresql://`` URL (``--store``), else ``$HWNAS_STORE`` (a path or URL), else
``$HWNAS_HOME/measurements.db``, else ``~/.hwnas/measurements.db``. Both engines hold the same tables, take the
same migrations and obey the same rules; what differs between them (placeholders, row ids, locks, the schema
version's home) is in ``_Sqlite`` here and ``hwnas.store_pg`` (imported only when a URL is used, with its driver).

    store = MeasurementStore()                      # or MeasurementStore(Path("m.db"))
    store.add(measurement)                          # -> row id
    store.query(device="host", space="nb201")       # latest per key
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import numbers
import os
import sqlite3
import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Iterable

from .errors import HwnasError
from .fileio import now_iso
from .paths import hwnas_home

SCHEMA_VERSION = 3
SOURCES = ("measured", "imported")
DB_NAME = "measurements.db"


class StoreError(HwnasError):
    """The store file cannot be opened, is not a hwnas store, or was written by a newer hwnas."""


# The plausible range of each quantity, name -> (low, low allowed, high): one rule for every way a number
# enters hwnas (``hwnas import latency``, ``table:`` sources, rows read back from the store, evaluations
# replayed from a search log). The upper bounds are generous (an hour per inference, a kilowatt for that hour)
# but finite: a 1e308 "latency" is a broken row, and it breaks every fit downstream.
_HOUR_MS = 3.6e6
VALUE_RANGES: dict[str, tuple[float, bool, float]] = {
    "latency_ms": (0.0, False, _HOUR_MS),
    "latency_corrected_ms": (0.0, False, _HOUR_MS),
    "energy_mj": (0.0, True, 1e3 * _HOUR_MS),
    "peak_power_w": (0.0, True, 1e4),
    "error": (0.0, True, 100.0),
    "test_accuracy": (0.0, True, 100.0),
    "params": (0.0, True, 1e18),
    "macs": (0.0, True, 1e18),
    "peak_memory_bytes": (0.0, True, 1e18),
}
_PERCENTAGES = ("error", "test_accuracy")
_WHY_HIGH = {"latency_ms": " (one hour)", "latency_corrected_ms": " (one hour)",
             "energy_mj": " (a kilowatt for an hour)", "peak_power_w": " (10 kW)"}


def value_problem(name: str, value) -> str | None:
    """Why ``value`` is not a plausible ``name`` (``latency_ms``, ``latency_ms@pixel2``, ``energy_mj``,
    ``error`` ...), or None when it is. A name without a rule needs only a finite number."""
    name = str(name).partition("@")[0]
    if type(value) is not float and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        return f"{name} must be a number, got {value!r}"
    v = float(value)
    if not math.isfinite(v):
        return f"{name} must be a finite number, got {v}"
    low, low_ok, high = VALUE_RANGES.get(name, (-math.inf, True, math.inf))
    if name in _PERCENTAGES and not low <= v <= high:
        return f"{name} must be a percentage in 0-100, got {v}"
    if v < low or (v == low and not low_ok):
        return f"{name} must be {'>=' if low_ok else '>'} {low:g}, got {v}"
    if v > high:
        return f"{name} must be at most {high:g}{_WHY_HIGH.get(name, '')}, got {v:g}"
    return None


def settings_key(settings: dict | None) -> str:
    """A stable hash of a settings dict (key order does not matter)."""
    text = json.dumps(settings or {}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


@dataclass
class Measurement:
    """One latency (and maybe energy) measurement of one arch on one device, and how it was obtained."""

    space: str
    arch_id: str
    arch: str  # the space's arch string
    device: str
    runtime: str
    runtime_version: str
    settings: dict  # format, precision, threads, delegate, space config, protocol ...
    source: str  # 'measured' | 'imported'
    latency_ms: float  # median
    latency_p90_ms: float | None = None
    latency_iqr_ms: float | None = None
    latency_cv: float | None = None
    n_runs: int = 0
    first_inference_ms: float | None = None
    unstable: bool = False
    energy_mj: float | None = None
    energy_source: str | None = None  # 'measured:<sensor>' | 'estimated:<power model>' | 'imported'
    peak_power_w: float | None = None  # largest power seen while it ran (schema 2)
    peak_power_source: str | None = None  # 'measured:<sensor>(peak of n samples every t ms)' | 'estimated:...'
    fingerprint: dict = field(default_factory=dict)
    created_at: str = ""
    op_profile: list[dict] | None = None  # [{name, op_type, ms, ...}]
    # schema 3: drift compensation, estimator, thermal state (None on rows from before, or when not used)
    latency_corrected_ms: float | None = None  # latency_ms x (reference long-run median / reference here)
    reference: dict | None = None  # {arch, arch_id, key, median_ms (here), long_run_median_ms, ratio, rounds}
    estimator: str | None = None  # which estimator latency_ms is (measure.protocol.ESTIMATORS)
    throttled: bool | None = None  # measured while the device was at / above its throttle temperature
    thermal: dict | None = None  # {before_c, after_c, cooldown_s, zones ...}
    id: int | None = None

    def __post_init__(self) -> None:
        if not self.created_at:
            self.created_at = now_iso()
        if self.source not in SOURCES:
            raise HwnasError(f"measurement source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        for name in _CHECKED:
            value = getattr(self, name)
            problem = None if value is None and name != "latency_ms" else value_problem(name, value)
            if problem:
                raise HwnasError(f"{problem} (arch {self.arch})")

    @property
    def settings_key(self) -> str:
        return settings_key(self.settings)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Measurement":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


_CHECKED = ("latency_ms", "energy_mj", "peak_power_w", "latency_corrected_ms")  # against VALUE_RANGES

_COLUMNS = (
    # name, sql type, json-encoded?
    ("space", "TEXT NOT NULL", False),
    ("arch_id", "TEXT NOT NULL", False),
    ("arch", "TEXT NOT NULL", False),
    ("device", "TEXT NOT NULL", False),
    ("runtime", "TEXT NOT NULL", False),
    ("runtime_version", "TEXT NOT NULL", False),
    ("settings", "TEXT NOT NULL", True),
    ("source", "TEXT NOT NULL", False),
    ("latency_ms", "REAL NOT NULL", False),
    ("latency_p90_ms", "REAL", False),
    ("latency_iqr_ms", "REAL", False),
    ("latency_cv", "REAL", False),
    ("n_runs", "INTEGER NOT NULL", False),
    ("first_inference_ms", "REAL", False),
    ("unstable", "INTEGER NOT NULL", False),
    ("energy_mj", "REAL", False),
    ("energy_source", "TEXT", False),
    ("fingerprint", "TEXT NOT NULL", True),
    ("created_at", "TEXT NOT NULL", False),
    ("op_profile", "TEXT", True),
    ("peak_power_w", "REAL", False),  # schema 2
    ("peak_power_source", "TEXT", False),  # schema 2
    # schema 3
    ("latency_corrected_ms", "REAL", False),
    ("reference", "TEXT", True),
    ("estimator", "TEXT", False),
    ("throttled", "INTEGER", False),
    ("thermal", "TEXT", True),
)
_V1_NAMES = [c[0] for c in _COLUMNS[:_COLUMNS.index(("op_profile", "TEXT", True)) + 1]]
_V2_NAMES = _V1_NAMES + ["peak_power_w", "peak_power_source"]
_NAMES = [c[0] for c in _COLUMNS]
_JSON = {c[0] for c in _COLUMNS if c[2]}
_NUMBERS = [c[0] for c in _COLUMNS if c[1].startswith(("REAL", "INTEGER"))]
# the other tables ``copy_from`` copies, with the columns that make a row (all but its id)
_COPIED = (("failures", ("space", "arch_id", "arch", "device", "runtime", "settings", "settings_key", "error",
                         "created_at")),
           ("reference_medians", ("device", "reference_key", "arch", "median_ms", "created_at")))
_STAGE = "hwnas_import_stage"  # the temporary table an import is read into before its one write transaction

_SCHEMA_V1 = f"""
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    {", ".join(f"{n} {t}" for n, t, _ in _COLUMNS if n in _V1_NAMES)},
    settings_key TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS measurements_key ON measurements (device, space, runtime, settings_key, arch_id);
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    space TEXT NOT NULL, arch_id TEXT NOT NULL, arch TEXT NOT NULL, device TEXT NOT NULL,
    runtime TEXT NOT NULL, settings TEXT NOT NULL, settings_key TEXT NOT NULL,
    error TEXT NOT NULL, created_at TEXT NOT NULL
);
"""

# Migrations from version v to v+1 (a new store is created at v1 and migrated up, so every store takes the same
# path); the store refuses files from a newer hwnas.
_MIGRATIONS: dict[int, str] = {
    # 1 -> 2: peak power columns
    1: "ALTER TABLE measurements ADD COLUMN peak_power_w REAL; ALTER TABLE measurements ADD COLUMN peak_power_source TEXT",
    # 2 -> 3: drift-corrected latency, the reference it was normalised by, the estimator, thermal state; and the
    # reference model's medians per device (their long-run median is what corrected values are scaled to)
    2: "; ".join([f"ALTER TABLE measurements ADD COLUMN {n} {t}" for n, t, _ in _COLUMNS if n not in _V2_NAMES] + [
        "CREATE TABLE IF NOT EXISTS reference_medians (id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, "
        "reference_key TEXT NOT NULL, arch TEXT NOT NULL, median_ms REAL NOT NULL, created_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS reference_medians_key ON reference_medians (device, reference_key)"]),
}


def default_store_path() -> Path:
    """``$HWNAS_HOME/measurements.db``, else ``~/.hwnas/measurements.db``."""
    return hwnas_home() / DB_NAME


def resolve_store_path(path: Path | str | None = None) -> Path:
    if path is None or str(path) == "":
        return default_store_path()
    p = Path(path).expanduser()
    return p / DB_NAME if p.is_dir() else p


URL_SCHEMES = ("postgresql://", "postgres://")


def is_store_url(target) -> bool:
    """Whether ``target`` names a PostgreSQL store (``postgresql://...``) rather than a SQLite file."""
    return isinstance(target, str) and target.startswith(URL_SCHEMES)


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (what every message and record shows)."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        if parts.password is None:
            masked = url
        else:
            netloc = parts.netloc.rpartition("@")
            user = netloc[0].partition(":")[0]
            masked = urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))
    except ValueError:  # not parseable: show the scheme only
        return url.partition("://")[0] + "://***"
    if "password=" in masked:  # ?password=... in the query string
        import re

        masked = re.sub(r"(password=)[^&]*", r"\1***", masked)
    return masked


def store_target(store: Path | str | None = None) -> Path | str:
    """What a store argument names: a ``postgresql://`` URL (str), else a SQLite file (Path). None or "": the
    ``$HWNAS_STORE`` environment variable (a path or URL), else the default file."""
    if store is None or str(store) == "":
        store = os.environ.get("HWNAS_STORE") or None
    if is_store_url(str(store) if store is not None else None):
        return str(store)
    return resolve_store_path(store)


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run a multi-statement SQL script statement by statement inside the caller's transaction
    (``executescript`` would commit it first)."""
    stmt = ""
    for part in script.split(";"):
        stmt += part + ";"
        if sqlite3.complete_statement(stmt):
            if stmt.strip(" \n;"):
                conn.execute(stmt)
            stmt = ""
    if stmt.strip(" \n;"):
        conn.execute(stmt)


def lock_key(*parts) -> str:
    """The text a write that must not be made twice locks on (hwnas.store_pg turns it into an advisory lock)."""
    return "\x1f".join(map(str, parts))


def _measurement_key(m: Measurement) -> str:
    return lock_key("measurement", m.device, m.space, m.runtime, m.settings_key, m.arch_id)


class _Sqlite:
    """What is SQLite's own in the store (``hwnas.store_pg.Postgres`` is its PostgreSQL twin)."""

    name = "SQLite"
    begin_write = "BEGIN IMMEDIATE"  # the one write lock at once: a check and its insert are one step
    stage = f"temp.{_STAGE}"
    stage_order = "rowid"
    errors: tuple = (sqlite3.Error,)

    def __init__(self, path: Path):
        self.path = path

    @staticmethod
    def create_stage(names: str) -> str:
        return f"CREATE TEMP TABLE {_STAGE} ({names})"

    @staticmethod
    def lock(conn, keys) -> None:
        """Nothing to do: BEGIN IMMEDIATE already holds SQLite's single write lock."""

    @staticmethod
    def insert(conn, sql: str, row) -> int:
        return conn.execute(sql, row).lastrowid

    @staticmethod
    def schema_version(conn) -> int:
        return conn.execute("PRAGMA user_version").fetchone()[0]

    def error(self, exc: BaseException) -> StoreError | None:
        """The StoreError a driver error means (None: not the store's fault, a bug: re-raise it)."""
        if isinstance(exc, sqlite3.OperationalError):  # locked for too long, disk full, read-only ...
            return StoreError(f"cannot use the measurement store {self.path} (SQLite says: {exc})")
        if type(exc) is sqlite3.DatabaseError:  # not a constraint or API error (a bug) but the file
            return StoreError(f"the measurement store {self.path} is damaged (SQLite says: {exc}); "
                              "restore it from a backup or move it aside to start a new one")
        return None

    def delete_hint(self, row_id) -> str:
        return f"sqlite3 {self.path} 'DELETE FROM measurements WHERE id={row_id}'"


class MeasurementStore:
    """The measurement store, SQLite or PostgreSQL. Safe to share between threads of one process (one lock) and
    between processes and machines (SQLite's own locking, PostgreSQL's advisory locks: ``add_many(...,
    if_absent=True)`` checks and inserts in one write transaction holding the measurements' locks, so two
    concurrent profiles never store the same measurement twice)."""

    def __init__(self, path: Path | str | None = None):
        target = store_target(path)
        self._lock = threading.RLock()
        if is_store_url(target):
            from .store_pg import Postgres

            self._backend = Postgres(target)
            self.path = self._backend.shown  # the URL with its password masked: what every message shows
            self._conn = self._backend.open()
        else:
            explicit = (path is not None and str(path) != "") or bool(os.environ.get("HWNAS_STORE"))
            self.path = target
            self._backend = _Sqlite(target)
            self._conn = self._open(create_parent=not explicit)

    @property
    def engine(self) -> str:
        """``SQLite`` or ``PostgreSQL``."""
        return self._backend.name

    # -- opening -------------------------------------------------------------------------------------
    def _open(self, create_parent: bool = True) -> sqlite3.Connection:
        parent = self.path.parent
        if not create_parent and not parent.is_dir():  # an explicit --store names a file in an existing directory
            raise StoreError(f"cannot open the store {self.path}: directory {parent} does not exist")
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store directory {parent}: {exc.strerror or exc}") from None
        try:
            conn = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a hwnas measurement store (SQLite says: {exc})") from None
        if version > SCHEMA_VERSION:
            conn.close()
            raise StoreError(f"{self.path} has store schema {version}, newer than this hwnas understands "
                             f"({SCHEMA_VERSION}); upgrade hwnas")
        if version == 0 and tables - {"sqlite_sequence"}:
            conn.close()
            raise StoreError(f"{self.path} is a SQLite file but not a hwnas measurement store")
        try:
            if version < SCHEMA_VERSION:
                # another process may be creating or migrating the same file: take the write lock, then read the
                # version again, so each step runs exactly once
                conn.execute("BEGIN IMMEDIATE")
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version == 0:
                    _run_script(conn, _SCHEMA_V1)
                    version = 1
                while version < SCHEMA_VERSION:
                    _run_script(conn, _MIGRATIONS[version])
                    version += 1
                conn.execute(f"PRAGMA user_version={version}")
                conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
            raise StoreError(f"cannot initialise the store {self.path}: {exc}") from None
        return conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextlib.contextmanager
    def _db(self, write: bool = False):
        """The connection under the thread lock (in one IMMEDIATE transaction when ``write``); SQLite errors
        of a damaged file become one StoreError naming the file."""
        with self._lock:
            try:
                if write:
                    self._conn.execute(self._backend.begin_write)
                try:
                    yield self._conn
                    if write:
                        self._conn.execute("COMMIT")
                except BaseException:  # any exit, Ctrl-C included: roll the transaction back, re-raise
                    if write and self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
            except Exception as exc:  # re-raised: as the store's one-line error where the driver's, else as it is
                err = self._backend.error(exc)
                if err is None:  # not the store's fault (a constraint or API error: a bug), or not the driver's
                    raise
                raise err from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- writing -------------------------------------------------------------------------------------
    @staticmethod
    def _row(m: Measurement, last: dict | None = None) -> list:
        """The column values of ``m``. ``last``: a memo of the JSON text of the dicts of the previous row (the
        rows of one import share one settings and one fingerprint dict: each is encoded once)."""
        last = {} if last is None else last
        out = []
        for name in _NAMES:
            v = getattr(m, name)
            if name in _JSON:
                if v is not None and name in last and last[name][0] is v:
                    v = last[name][1]
                elif v is not None:
                    text = json.dumps(v, sort_keys=True, default=str)
                    last[name] = (v, text)
                    v = text
            elif name == "unstable":
                v = int(bool(v))
            elif name == "throttled":
                v = None if v is None else int(bool(v))
            out.append(v)
        if "key" not in last or last["key"][0] is not m.settings:
            last["key"] = (m.settings, m.settings_key)
        return out + [last["key"][1]]

    def add(self, m: Measurement, if_absent: bool = False) -> int:
        """Append one measurement (one transaction); returns its row id and sets ``m.id``."""
        return self.add_many([m], if_absent=if_absent)[0]

    def add_many(self, ms: Iterable[Measurement], if_absent: bool = False) -> list[int]:
        """Append measurements in one transaction: all of them are written, or none. With ``if_absent``, a
        measurement whose key (space, arch id, device, runtime, settings) is already stored is not added
        again (its stored row id is returned): the check and the insert are one write transaction, so two
        processes profiling the same archs store each once."""
        ms = list(ms)
        sql = (f"INSERT INTO measurements ({', '.join(_NAMES)}, settings_key) "
               f"VALUES ({', '.join('?' * (len(_NAMES) + 1))})")
        ids = []
        with self._db(write=True) as conn:
            if if_absent:
                self._backend.lock(conn, [_measurement_key(m) for m in ms])
            for m in ms:
                row = None
                if if_absent:
                    row = conn.execute(
                        "SELECT MAX(id) FROM measurements WHERE device=? AND space=? AND runtime=? AND settings_key=? "
                        "AND arch_id=?", (m.device, m.space, m.runtime, m.settings_key, m.arch_id)).fetchone()[0]
                ids.append(row if row is not None else self._backend.insert(conn, sql, self._row(m)))
        for m, i in zip(ms, ids):
            m.id = i
        return ids

    def add_failure(self, space: str, arch_id: str, arch: str, device: str, runtime: str, settings: dict,
                    error: str) -> None:
        """Record that an arch could not be measured (conversion failed, the model crashed ...)."""
        with self._db(write=True) as conn:
            conn.execute(
                "INSERT INTO failures (space, arch_id, arch, device, runtime, settings, settings_key, error, "
                "created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (space, arch_id, arch, device, runtime, json.dumps(settings, sort_keys=True, default=str),
                 settings_key(settings), error, now_iso()))

    @staticmethod
    def _imported(conn: sqlite3.Connection, sha256: str, device: str, space: str) -> bool:
        rows = conn.execute("SELECT fingerprint FROM measurements WHERE source='imported' AND device=? AND space=? "
                            "AND fingerprint LIKE ?", (device, space, f"%{sha256}%")).fetchall()
        return any(json.loads(r[0]).get("sha256") == sha256 for r in rows)

    def has_import(self, sha256: str, device: str, space: str) -> bool:
        """Whether a file with this sha256 was already imported for ``device`` and ``space``."""
        with self._db() as conn:
            return self._imported(conn, sha256, device, space)

    def add_import(self, ms: Iterable[Measurement], sha256: str, device: str, space: str,
                   batch: int = 10_000) -> int:
        """Store the measurements read from one imported file (``sha256``), all or none, unless a file with this
        sha256 was already imported for ``device`` and ``space``; returns the rows added (0: imported before).

        ``ms`` may be a generator: it is consumed ``batch`` rows at a time into a temporary table of this
        connection (never all in memory, and without holding the store's write lock while the file is read;
        an exception it raises discards what was staged). The "already imported" check and the insert are then
        one write transaction, so two processes importing the same file at once store it once."""
        if self.has_import(sha256, device, space):  # the cheap answer before reading a large file
            return 0
        names = ", ".join(_NAMES) + ", settings_key"
        temp = self._backend.stage
        stage = f"INSERT INTO {temp} ({names}) VALUES ({', '.join('?' * (len(_NAMES) + 1))})"
        with self._lock:
            try:
                with self._db() as conn:
                    conn.execute(f"DROP TABLE IF EXISTS {temp}")
                    conn.execute(self._backend.create_stage(names))
                    conn.execute("BEGIN")  # writes only the temporary database: other writers go on
                    chunk: list[list] = []
                    last: dict = {}
                    for m in ms:
                        chunk.append(self._row(m, last))
                        if len(chunk) >= batch:
                            conn.executemany(stage, chunk)
                            chunk = []
                    if chunk:
                        conn.executemany(stage, chunk)
                    conn.execute("COMMIT")
                with self._db(write=True) as conn:
                    self._backend.lock(conn, [lock_key("import", sha256, device, space)])
                    if self._imported(conn, sha256, device, space):
                        return 0
                    return conn.execute(f"INSERT INTO measurements ({names}) SELECT {names} FROM {temp} "
                                        f"ORDER BY {self._backend.stage_order}").rowcount
            finally:
                with contextlib.suppress(*self._backend.errors):
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    self._conn.execute(f"DROP TABLE IF EXISTS {temp}")

    # -- copying between stores (``hwnas store copy``) ----------------------------------------------------
    def copy_from(self, src: "MeasurementStore") -> dict[str, tuple[int, int]]:
        """Add to this store the rows of ``src`` it does not hold yet (measurements, failures, reference medians),
        in ``src``'s order and in one write transaction: all or none. A row is held when a row of the same table
        has the same value in every column but its id, so a second copy adds nothing (and two copies at once add
        each row once). Returns table -> (rows added, rows already held). Every measurement of ``src`` is read
        and checked as any read checks it (a damaged row stops the copy, naming it)."""
        from collections import Counter

        rows = {"measurements": [tuple(self._row(m)) for m in src.query(latest=False)]}
        with src._db() as conn:
            for table, cols in _COPIED:
                rows[table] = [tuple(r) for r in conn.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY id")]
        out = {}
        with self._db(write=True) as conn:
            self._backend.lock(conn, [lock_key("copy")])
            for table, cols in (("measurements", (*_NAMES, "settings_key")), *_COPIED):
                if table == "measurements":
                    held = Counter(tuple(self._row(self._measurement(r)))
                                   for r in conn.execute("SELECT * FROM measurements").fetchall())
                else:
                    held = Counter(tuple(r) for r in conn.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall())
                todo = []
                for row in rows[table]:
                    if held[row] > 0:
                        held[row] -= 1
                    else:
                        todo.append(row)
                if todo:
                    conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                     todo)
                out[table] = (len(todo), len(rows[table]) - len(todo))
        return out

    # -- reading -------------------------------------------------------------------------------------
    def _measurement(self, row: sqlite3.Row) -> Measurement:
        """A stored row as a Measurement; a row edited by hand into something hwnas would never have written
        (text in a number column, a latency outside VALUE_RANGES, broken JSON) is one StoreError naming it."""
        try:
            d = {name: row[name] for name in _NAMES}
            for name in _NUMBERS:
                if d[name] is not None and (isinstance(d[name], bool) or not isinstance(d[name], numbers.Real)):
                    raise HwnasError(f"{name} must be a number, got {d[name]!r}")
            for name in _JSON:
                try:
                    d[name] = None if d[name] is None else json.loads(d[name])
                except ValueError:
                    raise HwnasError(f"{name} is not valid JSON: {str(d[name])[:60]!r}") from None
            d["unstable"] = bool(d["unstable"])
            d["throttled"] = None if d["throttled"] is None else bool(d["throttled"])
            d["id"] = row["id"]
            return Measurement(**d)
        except (HwnasError, TypeError, ValueError) as exc:
            what = str(exc).split(" (arch ")[0]
            arch = str(row["arch"])
            raise StoreError(f"{self.path}: row {row['id']} (device {row['device']!r}, arch "
                             f"{arch if len(arch) <= 80 else arch[:77] + '...'}) is damaged: {what}; correct or "
                             f"delete it ({self._backend.delete_hint(row['id'])})") from None

    def query(self, device: str | None = None, space: str | None = None, runtime: str | None = None,
              source: str | None = None, latest: bool = True, arch_id: str | None = None,
              settings: dict | None = None) -> list[Measurement]:
        """Measurements matching the filters, oldest first. ``latest=True``: only the newest row per
        (space, arch id, device, runtime, settings); ``settings`` filters on an exact settings dict."""
        where, args = [], []
        for col, val in (("device", device), ("space", space), ("runtime", runtime), ("source", source),
                         ("arch_id", arch_id)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        if settings is not None:
            where.append("settings_key = ?")
            args.append(settings_key(settings))
        cond = ("WHERE " + " AND ".join(where)) if where else ""
        if latest:
            sql = (f"SELECT * FROM measurements WHERE id IN (SELECT MAX(id) FROM measurements {cond} "
                   f"GROUP BY space, arch_id, device, runtime, settings_key) ORDER BY id")
        else:
            sql = f"SELECT * FROM measurements {cond} ORDER BY id"
        with self._db() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [self._measurement(r) for r in rows]

    def measured_ids(self, device: str, space: str, runtime: str, settings: dict) -> set[str]:
        """Arch ids that already have a measurement with exactly these settings (for resuming)."""
        with self._db() as conn:
            rows = conn.execute(
                "SELECT DISTINCT arch_id FROM measurements WHERE device=? AND space=? AND runtime=? AND settings_key=?",
                (device, space, runtime, settings_key(settings))).fetchall()
        return {r[0] for r in rows}

    def add_reference_median(self, device: str, reference_key: str, arch: str, median_ms: float) -> float:
        """Record one reference median measured on ``device``; return the reference's long-run median there
        (the median of every one recorded so far, this one included)."""
        with self._lock:
            try:
                self._conn.execute(self._backend.begin_write)
                self._conn.execute("INSERT INTO reference_medians (device, reference_key, arch, median_ms, created_at) "
                                   "VALUES (?,?,?,?,?)", (device, reference_key, arch, float(median_ms), now_iso()))
                self._conn.execute("COMMIT")
            except BaseException:  # any exit, Ctrl-C included: roll the transaction back, re-raise
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        return self.reference_median(device, reference_key)

    def reference_median(self, device: str, reference_key: str) -> float | None:
        """The long-run median of a reference model's medians on ``device`` (None if never measured)."""
        with self._lock:
            vals = [r[0] for r in self._conn.execute(
                "SELECT median_ms FROM reference_medians WHERE device=? AND reference_key=?", (device, reference_key))]
        if not vals:
            return None
        vals.sort()
        n = len(vals)
        return vals[n // 2] if n % 2 else (vals[n // 2 - 1] + vals[n // 2]) / 2

    def failures(self, device: str | None = None) -> list[dict]:
        sql = "SELECT * FROM failures" + (" WHERE device = ?" if device else "") + " ORDER BY id"
        with self._db() as conn:
            rows = conn.execute(sql, (device,) if device else ()).fetchall()
        return [dict(r) for r in rows]

    def devices(self) -> dict[str, int]:
        """Device name -> number of rows."""
        with self._db() as conn:
            rows = conn.execute("SELECT device, COUNT(*) FROM measurements GROUP BY device ORDER BY device")
            return {r[0]: r[1] for r in rows.fetchall()}

    def __len__(self) -> int:
        with self._db() as conn:
            return conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._backend.schema_version(self._conn)


__all__ = ["Measurement", "MeasurementStore", "StoreError", "SCHEMA_VERSION", "VALUE_RANGES", "value_problem", "settings_key",
           "default_store_path", "resolve_store_path", "store_target", "is_store_url", "mask_url", "lock_key"]
