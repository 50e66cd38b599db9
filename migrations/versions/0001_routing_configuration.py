"""routing configuration: municipalities, area codes, places, aliases, plan revision

Revision ID: 0001
Revises:
Create Date: 2026-11-30 23:21:22.425004
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "area_code",
        sa.Column("code", sa.String(length=5), nullable=False),
        sa.Column("main_place", sa.String(length=100), nullable=False),
        sa.Column("shared_mode", sa.String(length=8), nullable=False),
        sa.Column("languages", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "municipality",
        sa.Column("cbs_code", sa.String(length=6), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("name_short", sa.String(length=100), nullable=False),
        sa.Column("province", sa.String(length=40), nullable=False),
        sa.Column("seat", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("main_area_code", sa.String(length=5), nullable=False),
        sa.Column("public_number", sa.String(length=32), nullable=False),
        sa.Column("fourteen_plus_number", sa.String(length=16), nullable=False),
        sa.Column("kcc_destination", sa.String(length=255), nullable=False),
        sa.Column("overflow_destination", sa.String(length=255), nullable=False),
        sa.Column("opening_hours", sa.Text(), nullable=False),
        sa.Column("spoken_name", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("cbs_code"),
    )
    op.create_table(
        "plan_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "alias",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alias", sa.String(length=100), nullable=False),
        sa.Column("cbs_code", sa.String(length=6), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("place", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["cbs_code"], ["municipality.cbs_code"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alias", schema=None) as batch_op:
        batch_op.create_index("ix_alias_cbs", ["cbs_code"], unique=False)

    op.create_table(
        "area_code_member",
        sa.Column("area_code", sa.String(length=5), nullable=False),
        sa.Column("cbs_code", sa.String(length=6), nullable=False),
        sa.Column("menu_digit", sa.String(length=1), nullable=True),
        sa.Column("menu_order", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["area_code"], ["area_code.code"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["cbs_code"], ["municipality.cbs_code"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("area_code", "cbs_code"),
        sa.UniqueConstraint("area_code", "menu_digit", name="uq_member_digit"),
    )
    op.create_table(
        "place",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("cbs_code", sa.String(length=6), nullable=False),
        sa.Column("area_code", sa.String(length=5), nullable=False),
        sa.Column("woonplaats_code", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(["cbs_code"], ["municipality.cbs_code"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("place", schema=None) as batch_op:
        batch_op.create_index("ix_place_cbs", ["cbs_code"], unique=False)
    plan_revision = sa.table(
        "plan_revision",
        sa.column("id", sa.Integer),
        sa.column("revision", sa.Integer),
        sa.column("changed_at", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(plan_revision, [{"id": 1, "revision": 0, "changed_at": datetime.now(UTC)}])


def downgrade() -> None:
    with op.batch_alter_table("place", schema=None) as batch_op:
        batch_op.drop_index("ix_place_cbs")

    op.drop_table("place")
    op.drop_table("area_code_member")
    with op.batch_alter_table("alias", schema=None) as batch_op:
        batch_op.drop_index("ix_alias_cbs")

    op.drop_table("alias")
    op.drop_table("plan_revision")
    op.drop_table("municipality")
    op.drop_table("area_code")
