"""Database tables of the routing configuration (SQLAlchemy 2). Alembic migrations mirror these.

The schema is the same on SQLite (embedded default) and PostgreSQL (shared by several router instances).
Every change to routing bumps ``plan_revision``; routers compare that one integer before a call and reload
the plan when it moved, so a change made in the portal takes effect on the next call everywhere.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
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


class CallRecordRow(Base):
    """One row per call, written by :mod:`fourteen.callrecords` (upserted by ``call_id``).

    The caller's number is never stored, only a salted hash, and ``purge_after`` lets the retention job
    delete rows without knowing the policy that was in force when they were written.
    """

    __tablename__ = "call_record"
    __table_args__ = (
        Index("ix_call_record_started_at", "started_at"),
        Index("ix_call_record_area_code", "area_code"),
        Index("ix_call_record_municipality", "municipality"),
        Index("ix_call_record_purge_after", "purge_after"),
    )

    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # Asterisk uniqueid of the router leg
    router_instance: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    dialled: Mapped[str] = mapped_column(String(40), default="")
    area_code: Mapped[str | None] = mapped_column(String(5), nullable=True)
    caller_hash: Mapped[str] = mapped_column(String(64), default="")
    language: Mapped[str] = mapped_column(String(8), default="")
    mode: Mapped[str] = mapped_column(String(16), default="")
    steps: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    utterances: Mapped[list[str]] = mapped_column(JSON, default=list)
    candidates: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    decision: Mapped[str] = mapped_column(String(24), default="")
    municipality: Mapped[str] = mapped_column(String(6), default="")
    destination: Mapped[str] = mapped_column(String(255), default="")
    route: Mapped[str] = mapped_column(String(40), default="")
    transfer_result: Mapped[str] = mapped_column(String(16), default="")
    hangup_by: Mapped[str] = mapped_column(String(8), default="unknown")
    hangup_stage: Mapped[str] = mapped_column(String(20), default="")
    seconds_to_route: Mapped[float | None] = mapped_column(Float, nullable=True)
    kcc_answer_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    purge_after: Mapped[date] = mapped_column(Date)
