# Copyright: contributors to nhs_cm.remediation
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The results store: every run's results in SQLite (the default) or PostgreSQL (docs/history.md).

``open_store(url)`` connects, brings the schema up to date (or refuses a newer one) and returns
a ``Store``. Writes are one transaction each, so a run's rows appear all at once or not at all;
SQLite runs in WAL mode with a busy timeout and takes its write lock at the start of a write
(``BEGIN IMMEDIATE``), PostgreSQL serialises migrations with an advisory lock, so several
writers at once lose nothing. Every error is a ``StoreError`` of one line without the password.
Internal API of the nhs_cm.remediation collection: it may change in any release.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._history.records import (
    Point,
    StoreError,
    StoreUrl,
    hide,
    iso,
    parse_store_url,
    problem_ids,
    utc,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._history.store._schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    VERSION_TABLE,
    tables,
)

try:
    import sqlalchemy as sa
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from sqlalchemy import event
except ImportError:  # pragma: no cover - said in open_store
    sa = None

SQLITE_BUSY_SECONDS = 120
CONNECT_TIMEOUT_SECONDS = 30
#: The advisory lock key that serialises migrations on PostgreSQL ("nhs_cm" in ASCII).
MIGRATION_LOCK = 0x6E68735F636D
CHUNK = 500
FINDING_COLUMNS = ("id", "severity", "fault", "scope", "summary", "evidence")
ENTRY_COLUMNS = ("status", "audited", "faults", "findings", "waived", "changes", "backups", "error")
__all__ = ["SCHEMA_VERSION", "Store", "StoreError", "open_store"]


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _one_line(exc: BaseException) -> str:
    """The reason of a driver error in one line (the driver's own message, not SQLAlchemy's wrapper)."""
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split())
    for noise in ("(Background on this error at:", "[SQL:"):
        if noise in text:
            text = text.split(noise, 1)[0].strip()
    return text or type(orig).__name__


def _chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _engine(where: StoreUrl) -> Any:
    if where.kind == "sqlite":
        folder = os.path.dirname(where.path)
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise StoreError(f"results store {where.path}: {folder} is a file, not a folder")
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"results store {where.path}: cannot create its folder: {exc.strerror or exc}") from None
        engine = sa.create_engine(sa.engine.URL.create("sqlite", database=where.path),
                                  connect_args={"timeout": SQLITE_BUSY_SECONDS}, poolclass=sa.pool.NullPool)

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # transactions are begun below, not by the driver
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_SECONDS * 1000}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("nhs_cm_write") else "BEGIN")

        return engine
    parsed = sa.engine.make_url(where.url.replace("postgresql://", "postgresql+psycopg://", 1))
    if where.password:
        parsed = parsed.set(password=where.password)
    return sa.create_engine(parsed, poolclass=sa.pool.NullPool,
                            connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS,
                                          "application_name": "nhs_cm.remediation"})


def open_store(url: str, password: str | None = None, migrate: bool = True) -> Store:
    """Connect to the store, migrate it to ``SCHEMA_VERSION`` and return it; a ``StoreError`` otherwise."""
    where = parse_store_url(url, password)
    if sa is None:
        raise StoreError("the results store needs SQLAlchemy, Alembic and psycopg on the controller: "
                         "pip install -r requirements.txt (or meta/ee-requirements.txt in an execution environment)")
    store = Store(_engine(where), where)
    try:
        if migrate:
            store.migrate()
        else:
            store.version()
    except StoreError:
        store.close()
        raise
    return store


class Store:
    """One store: runs and their results, read and written in single transactions."""

    def __init__(self, engine: Any, where: StoreUrl) -> None:
        self.engine = engine
        self.where = where
        self.t = tables()

    # -- plumbing ------------------------------------------------------------------------------

    def close(self) -> None:
        self.engine.dispose()

    def fail(self, exc: BaseException, doing: str) -> StoreError:
        """A one-line error naming the store and what was being done, without the password."""
        reason = _one_line(exc)
        if reason.startswith("connection failed: "):
            doing, reason = "cannot connect", reason[len("connection failed: "):]
        if "password authentication failed" in reason:
            reason += " (give the password in nhs_cm_store_password or PGPASSWORD)"
        if "file is not a database" in reason:
            reason += " (the file is not a SQLite store)"
        return StoreError(hide(f"results store {self.where.shown}: {doing}: {reason}", self.where.password))

    @contextlib.contextmanager
    def _tx(self, doing: str, write: bool = False) -> Iterator[Any]:
        try:
            with self.engine.connect() as conn:
                if write:
                    conn = conn.execution_options(nhs_cm_write=True)
                with conn.begin():
                    yield conn
        except StoreError:
            raise
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            raise self.fail(exc, doing) from None

    def _current_version(self, conn: Any) -> int:
        if not sa.inspect(conn).has_table(VERSION_TABLE):
            return 0
        found = conn.execute(sa.select(self.t["version"].c.version)).scalar()
        return int(found or 0)

    def version(self) -> int:
        """The store's schema version; a newer one than this code's is an error."""
        with self._tx("cannot connect") as conn:
            found = self._current_version(conn)
        self._refuse_newer(found)
        return found

    def _refuse_newer(self, found: int) -> None:
        if found > SCHEMA_VERSION:
            raise StoreError(f"results store {self.where.shown} has schema version {found}, newer than the "
                             f"{SCHEMA_VERSION} this nhs_cm.remediation knows: upgrade the collection "
                             "(a store is never migrated back)")

    def migrate(self) -> int:
        """Bring the schema up to ``SCHEMA_VERSION`` in one transaction; returns the version found."""
        with self._tx("cannot connect or migrate", write=True) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            found = self._current_version(conn)
            self._refuse_newer(found)
            if found < SCHEMA_VERSION:
                op = Operations(MigrationContext.configure(conn))
                for version in range(found + 1, SCHEMA_VERSION + 1):
                    MIGRATIONS[version](op)
                version_table = self.t["version"]
                if found == 0:
                    version_table.create(conn)
                    conn.execute(version_table.insert().values(id=1, version=SCHEMA_VERSION))
                else:
                    conn.execute(version_table.update().values(version=SCHEMA_VERSION))
        return found

    # -- writing -------------------------------------------------------------------------------

    def _upsert_run(self, conn: Any, run: Mapping[str, Any]) -> None:
        runs = self.t["runs"]
        values = {c.name: run.get(c.name) for c in runs.columns if c.name != "hosts"}
        values["started"], values["ended"] = utc(run["started"]), utc(run.get("ended") or run["started"])
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        statement = insert(runs).values(**values, hosts=0)
        conn.execute(statement.on_conflict_do_update(index_elements=["run_id"],
                                                     set_={"ended": statement.excluded.ended}))

    def record(self, run: Mapping[str, Any], hosts: Mapping[str, Mapping[str, Any]]) -> int:
        """Record a run and its hosts' report entries in one transaction (a host recorded again replaces its rows).

        Returns how many hosts the run now has.
        """
        t = self.t
        rows: dict[str, list[dict[str, Any]]] = {"host_results": [], "findings": [], "changes": [], "backups": []}
        run_id = run["run_id"]
        for name, entry in hosts.items():
            _rows_of_host(rows, run_id, name, entry, run["started"])
        names = list(hosts)
        with self._tx(f"cannot record run {run_id}", write=True) as conn:
            self._upsert_run(conn, run)
            for part in _chunks(names):
                for table in ("findings", "changes", "backups", "host_results"):
                    conn.execute(t[table].delete().where(t[table].c.run_id == run_id, t[table].c.host.in_(part)))
            for table in ("host_results", "findings", "changes", "backups"):
                if rows[table]:
                    conn.execute(t[table].insert(), rows[table])
            count = conn.execute(sa.select(sa.func.count()).select_from(t["host_results"])
                                 .where(t["host_results"].c.run_id == run_id)).scalar_one()
            conn.execute(t["runs"].update().where(t["runs"].c.run_id == run_id).values(hosts=count))
        return int(count)

    def record_rollback(self, run: Mapping[str, Any], results: Mapping[str, Mapping[str, Any]]) -> int:
        """Record a rollback run: per host the backup restored, ok or failed, and what it said."""
        rollbacks = self.t["rollbacks"]
        rows = [{"run_id": run["run_id"], "host": name, "backup_id": str(result.get("backup_id") or ""),
                 "status": "failed" if result.get("failed") or result.get("unreachable") else "ok",
                 "restored": utc(run.get("ended") or run["started"]), "detail": _dump(result)}
                for name, result in results.items()]
        with self._tx(f"cannot record rollback run {run['run_id']}", write=True) as conn:
            self._upsert_run(conn, run)
            conn.execute(rollbacks.delete().where(rollbacks.c.run_id == run["run_id"]))
            if rows:
                conn.execute(rollbacks.insert(), rows)
        return len(rows)

    def prune(self, before: _dt.datetime, dry_run: bool = False) -> dict[str, int]:
        """Delete the runs started before ``before`` with all their rows; counts what goes."""
        t = self.t
        old = sa.select(t["runs"].c.run_id).where(t["runs"].c.started < utc(before))
        counted: dict[str, int] = {}
        with self._tx("cannot prune", write=not dry_run) as conn:
            for table in ("findings", "changes", "backups", "rollbacks", "host_results", "runs"):
                column = t[table].c.run_id
                if dry_run:
                    counted[table] = conn.execute(sa.select(sa.func.count()).select_from(t[table])
                                                  .where(column.in_(old))).scalar_one()
                else:
                    counted[table] = conn.execute(t[table].delete().where(column.in_(old))).rowcount
        return counted

    # -- reading -------------------------------------------------------------------------------

    def runs(self, since: _dt.datetime | None = None, until: _dt.datetime | None = None) -> list[dict[str, Any]]:
        """The runs (oldest first), optionally started in a window."""
        runs = self.t["runs"]
        query = sa.select(runs).order_by(runs.c.started, runs.c.run_id)
        if since is not None:
            query = query.where(runs.c.started >= utc(since))
        if until is not None:
            query = query.where(runs.c.started <= utc(until))
        with self._tx("cannot read runs") as conn:
            return [_run_dict(row._mapping) for row in conn.execute(query)]

    def select_runs(self, chosen: Mapping[str, Any]) -> tuple[list[str], _dt.datetime, str]:
        """(run ids, as-of time, description) of a selection (``_history.selection``)."""
        runs = self.t["runs"]
        query = sa.select(runs.c.run_id, runs.c.started, runs.c.grp).where(runs.c.hosts > 0)
        if chosen["kind"] == "awx_job":
            job = chosen["awx_job"]
            query = query.where(sa.or_(runs.c.awx_job_id == job, runs.c.awx_workflow_job_id == job))
            what = f"AWX job {job}"
        elif chosen["kind"] == "window":
            if chosen["since"] is not None:
                query = query.where(runs.c.started >= utc(chosen["since"]))
            query = query.where(runs.c.started <= utc(chosen["until"]))
            what = f"runs from {iso(chosen['since']) or 'the first'} to {iso(chosen['until'])}"
        elif chosen["run"] == "latest":
            newest = (runs.c.started.desc(), runs.c.run_id.desc())
            latest = sa.select(runs.c.grp).where(runs.c.hosts > 0).order_by(*newest).limit(1)
            query = query.where(runs.c.grp == latest.scalar_subquery())
            what = "the latest run"
        else:
            query = query.where(sa.or_(runs.c.run_id == chosen["run"], runs.c.grp == chosen["run"]))
            what = f"run {chosen['run']}"
        with self._tx("cannot read runs") as conn:
            found = conn.execute(query).all()
        if not found:
            raise StoreError(f"results store {self.where.shown}: no recorded run matches {what}")
        as_of = chosen["until"] if chosen["kind"] == "window" else max(utc(row.started) for row in found)
        return [row.run_id for row in found], as_of, what

    def entries(self, run_ids: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """Per host, the newest of its results in these runs: ``{host: (run_id, report entry)}``."""
        t = self.t
        hr, runs = t["host_results"], t["runs"]
        newest: dict[str, tuple[Any, str, Any]] = {}
        with self._tx("cannot read results") as conn:
            for part in _chunks(run_ids):
                query = (sa.select(hr, runs.c.started).join(runs, runs.c.run_id == hr.c.run_id)
                         .where(hr.c.run_id.in_(part)))
                for row in conn.execute(query):
                    key = (utc(row.audited), utc(row.started), row.run_id)
                    if row.host not in newest or key > newest[row.host][0]:
                        newest[row.host] = (key, row.run_id, row._mapping)
            by_run: dict[str, list[str]] = {}
            for host, (_key, run_id, _row) in newest.items():
                by_run.setdefault(run_id, []).append(host)
            children: dict[tuple[str, str], dict[str, list[Any]]] = {}
            for run_id, hosts in by_run.items():
                wanted = set(hosts)
                # Many hosts of a run: read the run's rows at once and keep the wanted hosts'; few: ask for them.
                parts: list[list[str] | None] = [None] if len(hosts) > CHUNK else list(_chunks(hosts))
                for part in parts:
                    for table in ("findings", "changes", "backups"):
                        tab = t[table]
                        order = [tab.c.host, tab.c.seq] if "seq" in tab.c else [tab.c.host, tab.c.backup_id]
                        query = sa.select(tab).where(tab.c.run_id == run_id).order_by(*order)
                        if part is not None:
                            query = query.where(tab.c.host.in_(part))
                        for row in conn.execute(query):
                            if row.host in wanted:
                                children.setdefault((run_id, row.host), {}).setdefault(table, []).append(row._mapping)
        out = {}
        for host, (_key, run_id, row) in newest.items():
            out[host] = (run_id, _entry(row, children.get((run_id, host), {})))
        return out

    def points(self, run_ids: list[str], until: _dt.datetime) -> dict[str, list[tuple[Point, str]]]:
        """Every audited result (oldest first) up to ``until`` of the hosts in these runs: {host: [(Point, run)]}."""
        hr, runs = self.t["host_results"], self.t["runs"]
        scope = sa.select(hr.c.host).where(hr.c.run_id.in_(run_ids)).distinct()
        known = sa.select(runs.c.run_id, runs.c.started, runs.c.playbook).where(runs.c.started <= utc(until))
        query = (sa.select(hr.c.host, hr.c.run_id, hr.c.problems, hr.c.changed)
                 .where(hr.c.status == "ok", hr.c.run_id.in_(known.with_only_columns(runs.c.run_id)),
                        hr.c.host.in_(scope)))
        found: dict[str, list[tuple[Point, str]]] = {}
        ids: dict[str, frozenset[str]] = {}  # the same few problem sets come back on every host
        with self._tx("cannot read history") as conn:
            when = {row.run_id: (utc(row.started), row.playbook) for row in conn.execute(known)}
            for host, run_id, problems, changed in conn.execute(query):
                started, playbook = when[run_id]
                problem_set = ids.get(problems)
                if problem_set is None:
                    problem_set = ids[problems] = frozenset(problems.split())
                found.setdefault(host, []).append((Point(started, problem_set, bool(changed), playbook), run_id))
        for items in found.values():
            items.sort(key=lambda item: (item[0].time, item[1]))
        return found

    def trend(self, until: _dt.datetime, limit: int) -> tuple[list[dict[str, Any]], list[Any], list[Any]]:
        """Rows for ``_history.trend_points``: the last ``limit`` run groups started by ``until``."""
        t = self.t
        runs, hr, findings = t["runs"], t["host_results"], t["findings"]
        first = sa.func.min(runs.c.started).label("time")
        groups_query = (sa.select(runs.c.grp, first, sa.func.min(runs.c.playbook).label("playbook"),
                                  sa.func.max(sa.case((runs.c.check_mode, 1), else_=0)).label("check_mode"))
                        .where(runs.c.hosts > 0, runs.c.started <= utc(until))
                        .group_by(runs.c.grp).order_by(first.desc(), runs.c.grp.desc()).limit(limit))
        with self._tx("cannot read the trend") as conn:
            groups = [dict(row._mapping) for row in conn.execute(groups_query)]
            names = [g["grp"] for g in groups]
            ids = sa.select(runs.c.run_id).where(runs.c.grp.in_(names))
            hosts = dict(conn.execute(
                sa.select(runs.c.grp, sa.func.count(sa.distinct(hr.c.host)))
                .join(runs, runs.c.run_id == hr.c.run_id)
                .where(hr.c.run_id.in_(ids), hr.c.status == "ok").group_by(runs.c.grp)).all())
            active = sa.and_(findings.c.run_id.in_(ids), sa.not_(findings.c.waived))
            joined = findings.join(runs, runs.c.run_id == findings.c.run_id)
            per_fault = conn.execute(
                sa.select(runs.c.grp, findings.c.fault, sa.func.count(sa.distinct(findings.c.host)))
                .select_from(joined)
                .where(active, findings.c.severity == "error", findings.c.fault.is_not(None))
                .group_by(runs.c.grp, findings.c.fault)).all()
            per_finding = conn.execute(
                sa.select(runs.c.grp, findings.c.finding_id, sa.func.count(sa.distinct(findings.c.host)))
                .select_from(joined)
                .where(active, findings.c.severity.in_(("error", "warning")))
                .group_by(runs.c.grp, findings.c.finding_id)).all()
        for group in groups:
            group["hosts"] = hosts.get(group["grp"], 0)
        return groups, [tuple(r) for r in per_fault], [tuple(r) for r in per_finding]

    def timeline(self, host: str, until: _dt.datetime) -> list[dict[str, Any]]:
        """Every recorded result of one host up to ``until``, oldest first."""
        hr, runs = self.t["host_results"], self.t["runs"]
        query = (sa.select(runs.c.run_id, runs.c.grp, runs.c.playbook, runs.c.check_mode, runs.c.started,
                           hr.c.status, hr.c.faults, hr.c.problems, hr.c.changed, hr.c.error)
                 .join(runs, runs.c.run_id == hr.c.run_id)
                 .where(hr.c.host == host, runs.c.started <= utc(until)).order_by(runs.c.started, runs.c.run_id))
        with self._tx("cannot read history") as conn:
            return [{"run": row.run_id, "group": row.grp, "playbook": row.playbook, "check_mode": bool(row.check_mode),
                     "time": iso(row.started), "status": row.status, "faults": [int(n) for n in row.faults.split()],
                     "problems": row.problems.split(), "changed": bool(row.changed), "error": row.error}
                    for row in conn.execute(query)]

    def rollbacks(self, since: _dt.datetime | None = None) -> list[dict[str, Any]]:
        rollbacks = self.t["rollbacks"]
        query = sa.select(rollbacks).order_by(rollbacks.c.restored, rollbacks.c.host)
        if since is not None:
            query = query.where(rollbacks.c.restored >= utc(since))
        with self._tx("cannot read rollbacks") as conn:
            return [{**dict(row._mapping), "restored": iso(row.restored), "detail": json.loads(row.detail)}
                    for row in conn.execute(query)]


def _run_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for name in ("started", "ended"):
        out[name] = iso(out[name]) if out[name] is not None else None
    return out


def _rows_of_host(rows: dict[str, list[dict[str, Any]]], run_id: str, name: str, entry: Mapping[str, Any],
                  started: _dt.datetime) -> None:
    """The rows of one host's report entry."""
    audited = entry.get("audited")
    rows["host_results"].append({
        "run_id": run_id, "host": name, "status": entry.get("status") or "failed",
        "audited": utc(_dt.datetime.fromisoformat(audited)) if isinstance(audited, str) else utc(started),
        "faults": " ".join(str(n) for n in entry.get("faults") or []), "problems": " ".join(problem_ids(entry)),
        "changed": bool(entry.get("changes")), "error": entry.get("error"),
        "entry": _dump({k: v for k, v in entry.items() if k not in ENTRY_COLUMNS}),
    })
    findings = [(f, False) for f in entry.get("findings") or []] + [(f, True) for f in entry.get("waived") or []]
    for seq, (finding, waived) in enumerate(findings):
        rows["findings"].append({
            "run_id": run_id, "host": name, "seq": seq, "finding_id": str(finding.get("id")),
            "severity": str(finding.get("severity") or ""), "fault": finding.get("fault"), "waived": waived,
            "scope": _dump(finding.get("scope")), "summary": str(finding.get("summary") or ""),
            "evidence": _dump(finding.get("evidence")),
            "detail": _dump({k: v for k, v in finding.items() if k not in FINDING_COLUMNS}),
        })
    rows["changes"] += [{"run_id": run_id, "host": name, "seq": seq, "change": _dump(change)}
                        for seq, change in enumerate(entry.get("changes") or [])]
    rows["backups"] += [{"run_id": run_id, "host": name, "backup_id": str(backup)}
                        for backup in dict.fromkeys(entry.get("backups") or [])]


def _finding(row: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
    detail = json.loads(row["detail"])
    finding = {"id": row["finding_id"], "fault": row["fault"], "severity": row["severity"],
               "scope": json.loads(row["scope"]), "summary": row["summary"], "evidence": json.loads(row["evidence"])}
    finding.update(detail)
    return bool(row["waived"]), finding


def _entry(row: Mapping[str, Any], children: Mapping[str, Iterable[Mapping[str, Any]]]) -> dict[str, Any]:
    """A report entry back from its rows."""
    findings: list[dict[str, Any]] = []
    waived: list[dict[str, Any]] = []
    for finding_row in children.get("findings", []):
        is_waived, finding = _finding(finding_row)
        (waived if is_waived else findings).append(finding)
    entry = {
        "status": row["status"], "audited": iso(row["audited"]),
        "faults": [int(n) for n in row["faults"].split()], "findings": findings, "waived": waived,
        "changes": [json.loads(c["change"]) for c in children.get("changes", [])],
        "backups": [b["backup_id"] for b in children.get("backups", [])], "error": row["error"],
    }
    entry.update(json.loads(row["entry"]))
    return entry
