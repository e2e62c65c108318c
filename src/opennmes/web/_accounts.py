"""Accounts (argon2-hashed passwords, roles, deactivation) and the audit log."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as OrmSession

from opennmes.errors import NmesError, StoreError
from opennmes.store import Store
from opennmes.web._models import ROLES, AuditRow, UserRow
from opennmes.web._sessions import utcnow

__all__ = ["User", "AccountInfo", "AuditEntry", "Accounts", "AccountError",
           "MIN_PASSWORD_LENGTH", "check_password"]

MIN_PASSWORD_LENGTH = 10
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_HASHER = PasswordHasher()
# verified against when the user name is unknown, so timing does not reveal which names exist
_DUMMY_HASH = _HASHER.hash("not-a-real-password-0")


class AccountError(NmesError, ValueError):
    """An account could not be created or changed (the message says which field and why)."""


@dataclass(frozen=True)
class User:
    """A logged-in account. ``patient_id`` is set for (and only for) the patient role;
    ``language`` is the language chosen on the account page (None: the browser's)."""

    id: int
    username: str
    role: str
    patient_id: str | None
    language: str | None = None


@dataclass(frozen=True)
class AccountInfo:
    """An account as the admin sees it: the user, whether it may log in, when it was made."""

    user: User
    active: bool
    created_at: dt.datetime


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log."""

    id: int
    at: dt.datetime
    username: str | None
    role: str | None
    action: str
    patient_id: str | None
    summary: str
    detail: dict[str, Any]


def _user(row: UserRow) -> User:
    return User(id=row.id, username=row.username, role=row.role, patient_id=row.patient_id,
                language=row.language)


def _info(row: UserRow) -> AccountInfo:
    return AccountInfo(user=_user(row), active=row.active, created_at=row.created_at)


def check_password(password: str) -> None:
    """Refuse (AccountError) a password that does not meet the policy: at least
    ``MIN_PASSWORD_LENGTH`` characters (for new accounts and password changes alike)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password has {len(password)} characters; at least "
                           f"{MIN_PASSWORD_LENGTH} are needed")


class Accounts:
    """Users and the audit log in the store's database."""

    def __init__(self, store: Store, cache_ttl: float = 2.0):
        self.store = store
        self.cache_ttl = cache_ttl
        self._cache: dict[int, tuple[float, User | None]] = {}
        self._cache_lock = threading.Lock()

    def _orm(self) -> OrmSession:
        return OrmSession(self.store.engine, expire_on_commit=False)

    # ---------------------------------------------------------------- users
    def create_user(self, username: str, password: str, role: str,
                    patient_id: str | None = None) -> User:
        """Create an account; AccountError names the field that is wrong."""
        username = username.strip().lower()
        if not _USERNAME.match(username):
            raise AccountError(f"user name {username!r} must be 2 to 64 characters from a-z, "
                               "0-9, '.', '_' and '-', starting with a letter or digit")
        if role not in ROLES:
            raise AccountError(f"role {role!r} is unknown; one of {list(ROLES)}")
        check_password(password)
        if (role == "patient") != bool(patient_id):
            raise AccountError("a patient account needs the patient id it belongs to, and only "
                               "patient accounts have one")
        if patient_id:
            try:
                self.store.get_patient(patient_id)
            except StoreError as exc:
                raise AccountError(f"unknown patient {patient_id!r}; add the patient "
                                   "first") from exc
        with self._orm() as s:
            row = UserRow(username=username, password_hash=_HASHER.hash(password), role=role,
                          patient_id=patient_id or None, active=True, created_at=utcnow())
            s.add(row)
            try:
                s.commit()
            except IntegrityError as exc:
                raise AccountError(f"user name {username!r} is taken, or patient "
                                   f"{patient_id!r} has an account already") from exc
            return _user(row)

    def authenticate(self, username: str, password: str) -> User | None:
        """The user when the password matches an active account, else None."""
        with self._orm() as s:
            row = s.scalar(sa.select(UserRow).where(
                UserRow.username == username.strip().lower()))
            if row is None or not row.active:
                try:
                    _HASHER.verify(_DUMMY_HASH, password)
                except VerificationError:
                    pass
                return None
            try:
                _HASHER.verify(row.password_hash, password)
            except (VerificationError, InvalidHashError):
                return None
            if _HASHER.check_needs_rehash(row.password_hash):
                row.password_hash = _HASHER.hash(password)
                s.commit()
            return _user(row)

    def get_user(self, user_id: int) -> User | None:
        """The active user with this id (None when absent or deactivated).

        Answers are cached for ``cache_ttl`` seconds (every request looks its user up).
        """
        now = time.monotonic()
        with self._cache_lock:
            hit = self._cache.get(user_id)
        if hit is not None and now < hit[0]:
            return hit[1]
        with self._orm() as s:
            row = s.get(UserRow, user_id)
            user = _user(row) if row is not None and row.active else None
        with self._cache_lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[user_id] = (now + self.cache_ttl, user)
        return user

    def cached_user(self, user_id: int) -> User | None | bool:
        """The cached answer of :meth:`get_user` (False when there is none): lets async
        routes avoid a database call."""
        with self._cache_lock:
            hit = self._cache.get(user_id)
        return hit[1] if hit is not None and time.monotonic() < hit[0] else False

    def _forget(self, user_id: int) -> None:
        with self._cache_lock:
            self._cache.pop(user_id, None)

    def get_account(self, user_id: int) -> AccountInfo | None:
        """The account with this id, active or not (None when there is none)."""
        with self._orm() as s:
            row = s.get(UserRow, user_id)
            return _info(row) if row is not None else None

    def list_accounts(self) -> list[AccountInfo]:
        """Every account, active or not, by name."""
        with self._orm() as s:
            return [_info(r) for r in s.scalars(sa.select(UserRow).order_by(UserRow.username))]

    def set_active(self, user_id: int, active: bool) -> AccountInfo:
        """Deactivate (no login, no page) or reactivate an account; AccountError when there
        is no such account. Ending its sessions is the caller's part."""
        with self._orm() as s:
            row = s.get(UserRow, user_id)
            if row is None:
                raise AccountError(f"no account with id {user_id}")
            row.active = active
            s.commit()
            info = _info(row)
        self._forget(user_id)
        return info

    def verify_password(self, user_id: int, password: str) -> bool:
        """True when ``password`` is the password of the active account ``user_id``."""
        with self._orm() as s:
            row = s.get(UserRow, user_id)
            if row is None or not row.active:
                return False
            try:
                return bool(_HASHER.verify(row.password_hash, password))
            except (VerificationError, InvalidHashError):
                return False

    def set_password(self, user_id: int, password: str) -> None:
        """Give the account a new password (checked against the policy, AccountError)."""
        check_password(password)
        with self._orm() as s:
            row = s.get(UserRow, user_id)
            if row is None:
                raise AccountError(f"no account with id {user_id}")
            row.password_hash = _HASHER.hash(password)
            s.commit()

    def set_language(self, user_id: int, language: str | None) -> User:
        """Keep the user's language (one of :data:`opennmes.i18n.LANGUAGES`; None or ``""``
        forgets it, so the browser's applies); AccountError names a language the app does
        not have."""
        from opennmes.i18n import LANGUAGES

        if language and language not in LANGUAGES:
            raise AccountError(f"language {language!r} is not one of {list(LANGUAGES)}")
        with self._orm() as s:
            row = s.get(UserRow, user_id)
            if row is None:
                raise AccountError(f"no account with id {user_id}")
            row.language = language or None
            s.commit()
            user = _user(row)
        self._forget(user_id)
        return user

    def list_users(self) -> list[User]:
        """All active users, by name."""
        with self._orm() as s:
            return [_user(r) for r in s.scalars(
                sa.select(UserRow).where(UserRow.active).order_by(UserRow.username))]

    def count_users(self) -> int:
        """Number of accounts."""
        with self._orm() as s:
            return int(s.scalar(sa.select(sa.func.count()).select_from(UserRow)) or 0)

    def patient_account(self, patient_id: str) -> User | None:
        """The account of a patient, if any."""
        with self._orm() as s:
            row = s.scalar(sa.select(UserRow).where(UserRow.patient_id == patient_id))
            return _user(row) if row is not None else None

    # ---------------------------------------------------------------- audit
    def audit(self, user: User | None, action: str, summary: str, *,
              patient_id: str | None = None, detail: Mapping[str, Any] | None = None) -> None:
        """Append one line to the audit log (who, when, what; old and new values in detail)."""
        with self._orm() as s:
            s.add(AuditRow(at=utcnow(), username=user.username if user else None,
                           role=user.role if user else None, action=action,
                           patient_id=patient_id, summary=summary, detail=dict(detail or {})))
            s.commit()

    def list_audit(self, patient_id: str | None = None, limit: int = 200) -> list[AuditEntry]:
        """Newest audit lines first (of one patient when given)."""
        q = sa.select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if patient_id is not None:
            q = q.where(AuditRow.patient_id == patient_id)
        with self._orm() as s:
            return [AuditEntry(id=r.id, at=r.at, username=r.username, role=r.role,
                               action=r.action, patient_id=r.patient_id, summary=r.summary,
                               detail=r.detail) for r in s.scalars(q)]
