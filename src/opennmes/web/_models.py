"""Tables of the web app: user accounts with roles, login sessions, and the audit log.

They live on the database's one declarative base (:class:`opennmes.store.Base`), registered
when ``opennmes.web`` is imported, so that the store's one Alembic history migrates them; the
revisions are ``opennmes/store/migrations/versions/0002_web_users_audit.py`` (users, audit log),
``0003_web_sessions.py`` (login sessions) and ``0005_user_language.py`` (each user's language).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opennmes.store import Base

__all__ = ["UserRow", "WebSessionRow", "AuditRow", "ROLES"]

ROLES = ("admin", "clinician", "patient")


class UserRow(Base):
    """An account: user name, argon2 password hash, role, and (for patients) the patient id."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    patient_id: Mapped[str | None] = mapped_column(
        ForeignKey("patients.id", ondelete="RESTRICT"), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(nullable=False)
    # the language the user chose on the account page (one of opennmes.i18n.LANGUAGES), or
    # None for the browser's (revision 0005)
    language: Mapped[str | None] = mapped_column(String(8))


class WebSessionRow(Base):
    """A login: the SHA-256 of the random token in the browser's cookie, whose it is, when it
    began, when it was last used and when (and why) it was ended."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         nullable=False, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(nullable=False)
    last_seen_at: Mapped[dt.datetime] = mapped_column(nullable=False)
    expires_at: Mapped[dt.datetime] = mapped_column(nullable=False)
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    revoked_reason: Mapped[str | None] = mapped_column(String(64))
    client: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))


class AuditRow(Base):
    """Who did what, when: prescriptions, changes, stimulation starts and stops, logins."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_patient_id_at", "patient_id", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(nullable=False)
    username: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    patient_id: Mapped[str | None] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text, nullable=False)
    detail: Mapped[Any] = mapped_column(JSON, nullable=False)
