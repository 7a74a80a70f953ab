"""The PostgreSQL side of the measurement store (``--store postgresql://...``, ``HWNAS_STORE``): a team store
that several people, processes and machines write at once.

``hwnas.store.MeasurementStore`` runs the same SQL on both engines; this module holds what PostgreSQL does
differently, as ``hwnas.store._Sqlite`` holds SQLite's part:

- the driver, psycopg 3, imported only here and only when a URL is used (``pip install 'hwnas[postgres]'``);
- ``?`` placeholders become ``%s``; a row answers both ``row[0]`` and ``row["name"]`` (as ``sqlite3.Row``);
- the same tables and migrations (``_SCHEMA_V1``, ``_MIGRATIONS``), with ``BIGSERIAL`` ids and ``DOUBLE
  PRECISION`` reals; the schema version lives in a table, ``hwnas_schema`` (one row per step applied, SQLite
  keeps it in ``PRAGMA user_version``);
- locks: creating or migrating the schema holds ``pg_advisory_xact_lock`` on one key, so two processes that open
  an old store at once migrate it once (the second waits, reads the new version and does nothing); a write that
  must not be made twice (``add_many(if_absent=True)``, an import's "already imported?" check, a copy) holds an
  advisory lock per key for its transaction, where SQLite's ``BEGIN IMMEDIATE`` holds its one write lock;
- passwords never show: ``shown`` is the URL with its password masked, and driver messages are scrubbed of it.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from .store import _MIGRATIONS, _SCHEMA_V1, _STAGE, SCHEMA_VERSION, StoreError, mask_url, now_iso

SCHEMA_TABLE = "hwnas_schema"
_MIGRATE_KEY = "hwnas:schema"


def advisory_key(text: str) -> int:
    """A stable signed 64-bit advisory lock key for ``text``."""
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "big", signed=True)


def pg_sql(script: str) -> str:
    """SQLite DDL of the store in PostgreSQL's words (the same tables, columns and indexes)."""
    script = script.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
    return re.sub(r"\bREAL\b", "DOUBLE PRECISION", script)


@lru_cache(maxsize=256)
def _placeholders(sql: str) -> str:
    return sql.replace("?", "%s")  # the store's SQL has no literal '?' or '%'


class _Row(tuple):
    """A row read by name or position, like ``sqlite3.Row``."""

    __slots__ = ()
    _index: dict = {}

    def __getitem__(self, key):
        return tuple.__getitem__(self, self._index[key] if isinstance(key, str) else key)

    def keys(self):
        return list(self._index)


@lru_cache(maxsize=64)
def _row_class(names: tuple) -> type:
    return type("Row", (_Row,), {"__slots__": (), "_index": {n: i for i, n in enumerate(names)}})


def _row_factory(cursor):
    return _row_class(tuple(c.name for c in cursor.description or ()))


class PgConnection:
    """A psycopg connection that runs the store's SQLite-flavoured statements (autocommit; the store sends its own
    BEGIN / COMMIT, as it does to SQLite)."""

    def __init__(self, raw):
        self.raw = raw

    def execute(self, sql: str, args=()):
        return self.raw.execute(_placeholders(sql), tuple(args) if args else None)

    def executemany(self, sql: str, rows):
        cur = self.raw.cursor()
        cur.executemany(_placeholders(sql), [tuple(r) for r in rows])
        return cur

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def close(self) -> None:
        self.raw.close()


def _driver():
    try:
        import psycopg
    except ImportError:
        raise StoreError("a PostgreSQL store needs the psycopg driver: pip install 'hwnas[postgres]'") from None
    return psycopg


class Postgres:
    """What is PostgreSQL's own in the store (the twin of ``hwnas.store._Sqlite``)."""

    name = "PostgreSQL"
    begin_write = "BEGIN"
    stage = f"pg_temp.{_STAGE}"
    stage_order = "ord"

    def __init__(self, url: str):
        self.url = url
        self.shown = mask_url(url)
        self.errors = (_driver().Error,)

    # -- messages never show the password ---------------------------------------------------------------
    def scrub(self, text) -> str:
        from urllib.parse import unquote, urlsplit

        text = str(text).strip().splitlines()[0] if str(text).strip() else type(text).__name__
        try:
            secret = urlsplit(self.url).password
        except ValueError:
            secret = None
        for s in filter(None, {secret, secret and unquote(secret)}):
            text = text.replace(s, "***")
        return text.replace(self.url, self.shown)

    def error(self, exc: BaseException) -> StoreError | None:
        psycopg = _driver()
        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):  # server gone, lock timeout ...
            return StoreError(f"cannot use the measurement store {self.shown} (PostgreSQL says: {self.scrub(exc)})")
        return None

    def delete_hint(self, row_id) -> str:
        return f"psql '{self.shown}' -c 'DELETE FROM measurements WHERE id={row_id}'"

    # -- statements --------------------------------------------------------------------------------------
    @staticmethod
    def create_stage(names: str) -> str:
        from .store import _COLUMNS

        typed = ", ".join(f"{n} {t.replace(' NOT NULL', '')}" for n, t, _ in _COLUMNS)
        return pg_sql(f"CREATE TEMP TABLE {_STAGE} (ord BIGSERIAL, {typed}, settings_key TEXT)")

    @staticmethod
    def lock(conn: PgConnection, keys) -> None:
        """Hold an advisory lock per key until the transaction ends (in key order: two writers never deadlock)."""
        for k in sorted({advisory_key(k) for k in keys}):
            conn.execute("SELECT pg_advisory_xact_lock(?)", (k,))

    @staticmethod
    def insert(conn: PgConnection, sql: str, row) -> int:
        return conn.execute(sql + " RETURNING id", row).fetchone()[0]

    @staticmethod
    def schema_version(conn: PgConnection) -> int:
        if conn.execute("SELECT to_regclass(?)", (SCHEMA_TABLE,)).fetchone()[0] is None:
            return 0
        return conn.execute(f"SELECT COALESCE(MAX(version), 0) FROM {SCHEMA_TABLE}").fetchone()[0]

    # -- opening: connect, then create or migrate the schema once -----------------------------------------
    def open(self) -> PgConnection:
        psycopg = _driver()
        try:
            raw = psycopg.connect(self.url, autocommit=True, row_factory=_row_factory, connect_timeout=30)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to the measurement store {self.shown}: {self.scrub(exc)}") from None
        conn = PgConnection(raw)
        try:
            version = self.schema_version(conn)
            if version < SCHEMA_VERSION:
                self.migrate(conn)
            elif version > SCHEMA_VERSION:
                raise StoreError(f"{self.shown} has store schema {version}, newer than this hwnas understands "
                                 f"({SCHEMA_VERSION}); upgrade hwnas")
        except BaseException as exc:  # any exit, Ctrl-C too: roll back, close, re-raise (a driver error as StoreError)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
            if isinstance(exc, psycopg.Error):
                raise StoreError(f"cannot initialise the store {self.shown}: {self.scrub(exc)}") from None
            raise
        return conn

    def migrate(self, conn: PgConnection) -> None:
        """Create the schema or migrate it to ``SCHEMA_VERSION``, one step at a time, under one advisory lock: a
        process that opens the store while another migrates it waits, then finds the work done."""
        from . import __version__

        conn.execute("BEGIN")
        conn.execute("SELECT pg_advisory_xact_lock(?)", (advisory_key(_MIGRATE_KEY),))
        version = self.schema_version(conn)  # again, under the lock
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.shown} has store schema {version}, newer than this hwnas understands "
                             f"({SCHEMA_VERSION}); upgrade hwnas")
        if version == 0:
            tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
            if tables:
                raise StoreError(f"{self.shown} is a PostgreSQL database but not a hwnas measurement store (it has "
                                 f"tables {', '.join(sorted(tables)[:5])}); give hwnas a database (or schema) of its own")
            conn.execute(f"CREATE TABLE {SCHEMA_TABLE} (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL, "
                         "hwnas_version TEXT NOT NULL)")
        steps = [(1, _SCHEMA_V1)] if version == 0 else []
        steps += [(v + 1, _MIGRATIONS[v]) for v in range(max(version, 1), SCHEMA_VERSION)]
        for to, script in steps:
            for stmt in pg_sql(script).split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            # the primary key makes a step recorded twice an error, never a silent second run
            conn.execute(f"INSERT INTO {SCHEMA_TABLE} (version, applied_at, hwnas_version) VALUES (?, ?, ?)",
                         (to, now_iso(), __version__))
        conn.execute("COMMIT")


__all__ = ["Postgres", "PgConnection", "advisory_key", "pg_sql", "SCHEMA_TABLE"]
