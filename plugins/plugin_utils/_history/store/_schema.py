# Copyright: contributors to nhs_cm.remediation
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The results store's tables (SQLAlchemy Core) and its migrations (Alembic operations).

``SCHEMA_VERSION`` is the version this code reads and writes. ``MIGRATIONS`` take a store from
one version to the next; each runs in the transaction that also records the new version, so a
store is never half migrated. A store whose version is higher than ``SCHEMA_VERSION`` was
written by a newer collection and is refused (docs/history.md). A migration, once released,
never changes: a new version adds a new one. Internal API of the nhs_cm.remediation collection.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

try:
    import sqlalchemy as sa
except ImportError:  # checked by _store.open_store, which says what to install
    sa = None

SCHEMA_VERSION = 1
VERSION_TABLE = "nhs_cm_schema"
NAME = 255  # host names, run ids, finding ids


def _v1(op: Any) -> None:
    """Version 1: runs, host results, findings, changes, backups and rollbacks."""
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("grp", sa.String(160), nullable=False, index=True),
        sa.Column("started", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("ended", sa.DateTime(timezone=True)),
        sa.Column("playbook", sa.String(32), nullable=False),
        sa.Column("check_mode", sa.Boolean, nullable=False),
        sa.Column("awx_job_id", sa.BigInteger, index=True),
        sa.Column("awx_workflow_job_id", sa.BigInteger, index=True),
        sa.Column("awx_slice", sa.Integer),
        sa.Column("hosts", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "host_results",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("host", sa.String(NAME), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("audited", sa.DateTime(timezone=True), nullable=False),
        sa.Column("faults", sa.String(32), nullable=False),
        sa.Column("problems", sa.Text, nullable=False),
        sa.Column("changed", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("entry", sa.Text, nullable=False),
    )
    op.create_index("ix_host_results_host", "host_results", ["host", "run_id"])
    op.create_table(
        "findings",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("host", sa.String(NAME), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("finding_id", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("fault", sa.Integer),
        sa.Column("waived", sa.Boolean, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.ForeignKeyConstraint(["run_id", "host"], ["host_results.run_id", "host_results.host"], ondelete="CASCADE"),
    )
    op.create_index("ix_findings_run_finding", "findings", ["run_id", "finding_id"])
    op.create_table(
        "changes",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("host", sa.String(NAME), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("change", sa.Text, nullable=False),
        sa.ForeignKeyConstraint(["run_id", "host"], ["host_results.run_id", "host_results.host"], ondelete="CASCADE"),
    )
    op.create_table(
        "backups",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("host", sa.String(NAME), primary_key=True),
        sa.Column("backup_id", sa.String(NAME), primary_key=True),
        sa.ForeignKeyConstraint(["run_id", "host"], ["host_results.run_id", "host_results.host"], ondelete="CASCADE"),
    )
    op.create_index("ix_backups_backup_id", "backups", ["backup_id"])
    op.create_table(
        "rollbacks",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("host", sa.String(NAME), primary_key=True),
        sa.Column("backup_id", sa.String(NAME), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("restored", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_rollbacks_host", "rollbacks", ["host"])


#: version -> the migration that makes it from the version before.
MIGRATIONS: dict[int, Callable[[Any], None]] = {1: _v1}


@functools.cache
def tables() -> dict[str, Any]:
    """The tables as this code reads and writes them (version ``SCHEMA_VERSION``)."""
    meta = sa.MetaData()

    class _Recorder:
        """Alembic-like ``op`` that builds the tables in ``meta`` instead of running DDL."""

        @staticmethod
        def create_table(name: str, *columns: Any) -> None:
            sa.Table(name, meta, *columns)

        @staticmethod
        def create_index(name: str, table: str, columns: list[str]) -> None:
            sa.Index(name, *(meta.tables[table].c[c] for c in columns))

    for version in sorted(MIGRATIONS):
        MIGRATIONS[version](_Recorder)
    version = sa.Table(VERSION_TABLE, meta, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                       sa.Column("version", sa.Integer, nullable=False))
    return {"meta": meta, "version": version, **{name: meta.tables[name] for name in meta.tables}}
