"""call records: one row per call (salted caller hash, retention date)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_record",
        sa.Column("call_id", sa.String(length=64), nullable=False),
        sa.Column("router_instance", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dialled", sa.String(length=40), nullable=False),
        sa.Column("area_code", sa.String(length=5), nullable=True),
        sa.Column("caller_hash", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("utterances", sa.JSON(), nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("decision", sa.String(length=24), nullable=False),
        sa.Column("municipality", sa.String(length=6), nullable=False),
        sa.Column("destination", sa.String(length=255), nullable=False),
        sa.Column("route", sa.String(length=40), nullable=False),
        sa.Column("transfer_result", sa.String(length=16), nullable=False),
        sa.Column("hangup_by", sa.String(length=8), nullable=False),
        sa.Column("hangup_stage", sa.String(length=20), nullable=False),
        sa.Column("seconds_to_route", sa.Float(), nullable=True),
        sa.Column("kcc_answer_seconds", sa.Float(), nullable=True),
        sa.Column("purge_after", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("call_id"),
    )
    with op.batch_alter_table("call_record", schema=None) as batch_op:
        batch_op.create_index("ix_call_record_started_at", ["started_at"], unique=False)
        batch_op.create_index("ix_call_record_area_code", ["area_code"], unique=False)
        batch_op.create_index("ix_call_record_municipality", ["municipality"], unique=False)
        batch_op.create_index("ix_call_record_purge_after", ["purge_after"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("call_record", schema=None) as batch_op:
        batch_op.drop_index("ix_call_record_purge_after")
        batch_op.drop_index("ix_call_record_municipality")
        batch_op.drop_index("ix_call_record_area_code")
        batch_op.drop_index("ix_call_record_started_at")
    op.drop_table("call_record")
