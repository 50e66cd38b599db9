"""Database tables of the routing configuration (SQLAlchemy 2). Alembic migrations mirror these.

The schema is the same on SQLite (embedded default) and PostgreSQL (shared by several router instances).
Every change to routing bumps ``plan_revision``; routers compare that one integer before a call and reload
the plan when it moved, so a change made in the portal takes effect on the next call everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class MunicipalityRow(Base):
    __tablename__ = "municipality"

    cbs_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    name_short: Mapped[str] = mapped_column(String(100))
    province: Mapped[str] = mapped_column(String(40))
    seat: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(16), default="technical")
    main_area_code: Mapped[str] = mapped_column(String(5), default="")
    public_number: Mapped[str] = mapped_column(String(32), default="")
    fourteen_plus_number: Mapped[str] = mapped_column(String(16), default="")
    kcc_destination: Mapped[str] = mapped_column(String(255), default="")
    overflow_destination: Mapped[str] = mapped_column(String(255), default="")
    opening_hours: Mapped[str] = mapped_column(Text, default="")
    spoken_name: Mapped[str] = mapped_column(String(100), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class AreaCodeRow(Base):
    __tablename__ = "area_code"

    code: Mapped[str] = mapped_column(String(5), primary_key=True)
    main_place: Mapped[str] = mapped_column(String(100), default="")
    shared_mode: Mapped[str] = mapped_column(String(8), default="speech")
    languages: Mapped[str] = mapped_column(String(32), default="nl,en")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class AreaCodeMemberRow(Base):
    __tablename__ = "area_code_member"
    __table_args__ = (UniqueConstraint("area_code", "menu_digit", name="uq_member_digit"),)

    area_code: Mapped[str] = mapped_column(
        String(5), ForeignKey("area_code.code", ondelete="CASCADE"), primary_key=True
    )
    cbs_code: Mapped[str] = mapped_column(
        String(6), ForeignKey("municipality.cbs_code", ondelete="CASCADE"), primary_key=True
    )
    #: NULL when the municipality has no key of its own (more than nine behind one code).
    menu_digit: Mapped[str | None] = mapped_column(String(1), nullable=True)
    menu_order: Mapped[int] = mapped_column(Integer, default=0)


class PlaceRow(Base):
    __tablename__ = "place"
    __table_args__ = (Index("ix_place_cbs", "cbs_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16), default="woonplaats")
    cbs_code: Mapped[str] = mapped_column(String(6), ForeignKey("municipality.cbs_code", ondelete="CASCADE"))
    area_code: Mapped[str] = mapped_column(String(5), default="")
    woonplaats_code: Mapped[str] = mapped_column(String(8), default="")


class AliasRow(Base):
    __tablename__ = "alias"
    __table_args__ = (Index("ix_alias_cbs", "cbs_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alias: Mapped[str] = mapped_column(String(100))
    cbs_code: Mapped[str] = mapped_column(String(6), ForeignKey("municipality.cbs_code", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24), default="")
    place: Mapped[str] = mapped_column(String(100), default="")


class PlanRevisionRow(Base):
    """One row: the revision of the routing configuration, bumped by every change."""

    __tablename__ = "plan_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
