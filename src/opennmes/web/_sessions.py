"""Login sessions kept on the server, so that they can be ended.

A login creates a row of ``web_sessions`` and puts a random token (32 bytes from
:mod:`secrets`) in the browser's signed session cookie; the database keeps only the token's
SHA-256, so a copy of the database opens no session. Every request looks the token up, and
a session counts only while it is not revoked, not past ``expires_at`` (``session_max_age``
after login) and used within the last ``idle_timeout``. Logout, a password change,
deactivating an account and an admin's "log out everywhere" revoke rows: a cookie saved
before that opens nothing afterwards.

Answers are cached for ``cache_ttl`` seconds (the live feed asks 20 times a second); every
revocation clears this process's cache at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session as OrmSession

from opennmes.store import Store
from opennmes.web._models import UserRow, WebSessionRow

__all__ = ["WebSession", "WebSessions"]


@dataclasses.dataclass(frozen=True)
class WebSession:
    """One login session (times are UTC)."""

    id: int
    user_id: int
    username: str
    created_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    revoked_reason: str | None
    client: str | None
    user_agent: str | None


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


def _utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _session(row: WebSessionRow, username: str) -> WebSession:
    return WebSession(id=row.id, user_id=row.user_id, username=username,
                      created_at=_utc(row.created_at), last_seen_at=_utc(row.last_seen_at),
                      expires_at=_utc(row.expires_at),
                      revoked_at=_utc(row.revoked_at) if row.revoked_at else None,
                      revoked_reason=row.revoked_reason, client=row.client,
                      user_agent=row.user_agent)


class WebSessions:
    """The login sessions in the store's database.

    Parameters
    ----------
    store : Store
        The open store (its database holds ``web_sessions``).
    max_age : float
        Lifetime of a login, in s.
    idle_timeout : float
        A login not used for this long has ended, in s.
    cache_ttl : float
        How long a lookup is remembered, in s.
    now : callable
        The current UTC time (tests pass their own clock).
    """

    def __init__(self, store: Store, *, max_age: float, idle_timeout: float,
                 cache_ttl: float = 2.0, now: Callable[[], dt.datetime] = utcnow):
        self.store = store
        self.max_age = max_age
        self.idle_timeout = idle_timeout
        self.cache_ttl = cache_ttl
        self.now = now
        # last_seen_at is written at most this often per session
        self.touch_interval = min(60.0, idle_timeout / 10)
        self._cache: dict[str, tuple[float, WebSession | None]] = {}
        self._generation = 0  # counts revocations: a lookup that raced one is not cached
        self._lock = threading.Lock()

    def _orm(self) -> OrmSession:
        return OrmSession(self.store.engine, expire_on_commit=False)

    def _forget_all(self) -> None:
        with self._lock:
            self._generation += 1
            self._cache.clear()

    def _live(self, ws: WebSession, now: dt.datetime) -> bool:
        return (ws.revoked_at is None and now < ws.expires_at
                and (now - ws.last_seen_at).total_seconds() <= self.idle_timeout)

    def start(self, user_id: int, *, client: str | None = None,
              user_agent: str | None = None) -> tuple[str, WebSession]:
        """A new session of ``user_id``: the token for the cookie, and its record."""
        token = secrets.token_urlsafe(32)
        now = self.now()
        with self._orm() as s:
            username = s.scalar(sa.select(UserRow.username).where(UserRow.id == user_id))
            if username is None:
                raise LookupError(f"no user with id {user_id}")
            row = WebSessionRow(token_hash=_hash(token), user_id=user_id, created_at=now,
                                last_seen_at=now,
                                expires_at=now + dt.timedelta(seconds=self.max_age),
                                client=(client or None) and client[:64],
                                user_agent=(user_agent or None) and user_agent[:200])
            s.add(row)
            s.commit()
            return token, _session(row, username)

    def cached(self, token: str) -> WebSession | None | bool:
        """The cached answer of :meth:`resolve` (False when there is none): lets async routes
        avoid a database call."""
        with self._lock:
            hit = self._cache.get(_hash(token))
        return hit[1] if hit is not None and time.monotonic() < hit[0] else False

    def resolve(self, token: str) -> WebSession | None:
        """The live session whose cookie carries ``token`` (None when unknown, revoked,
        expired or idle too long); marks it as used."""
        key = _hash(token)
        mono = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            generation = self._generation
        if hit is not None and mono < hit[0]:
            return hit[1]
        now = self.now()
        with self._orm() as s:
            found = s.execute(sa.select(WebSessionRow, UserRow.username)
                              .join(UserRow, UserRow.id == WebSessionRow.user_id)
                              .where(WebSessionRow.token_hash == key)).first()
            ws = _session(*found) if found is not None else None
            if ws is not None and not self._live(ws, now):
                ws = None
            if ws is not None and (now - ws.last_seen_at).total_seconds() > self.touch_interval:
                s.execute(sa.update(WebSessionRow).where(WebSessionRow.id == ws.id)
                          .values(last_seen_at=now))
                s.commit()
                ws = dataclasses.replace(ws, last_seen_at=now)
        with self._lock:
            if generation == self._generation:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[key] = (mono + self.cache_ttl, ws)
        return ws

    def get(self, session_id: int) -> WebSession | None:
        """The session with this id, live or not (None when there is none)."""
        with self._orm() as s:
            found = s.execute(sa.select(WebSessionRow, UserRow.username)
                              .join(UserRow, UserRow.id == WebSessionRow.user_id)
                              .where(WebSessionRow.id == session_id)).first()
            return _session(*found) if found is not None else None

    def list_live(self, user_id: int | None = None) -> list[WebSession]:
        """The live sessions (of one user when given), most recently used first."""
        q = (sa.select(WebSessionRow, UserRow.username)
             .join(UserRow, UserRow.id == WebSessionRow.user_id)
             .where(WebSessionRow.revoked_at.is_(None))
             .order_by(WebSessionRow.last_seen_at.desc(), WebSessionRow.id.desc()))
        if user_id is not None:
            q = q.where(WebSessionRow.user_id == user_id)
        now = self.now()
        with self._orm() as s:
            sessions = [_session(row, name) for row, name in s.execute(q)]
        return [ws for ws in sessions if self._live(ws, now)]

    def end(self, session_id: int, reason: str) -> bool:
        """Revoke one session; False when it had ended already (or does not exist)."""
        return self._revoke(WebSessionRow.id == session_id, reason) > 0

    def end_user(self, user_id: int, reason: str) -> int:
        """Revoke every session of ``user_id``; the number of sessions that were live."""
        return self._revoke(WebSessionRow.user_id == user_id, reason)

    def _revoke(self, where: sa.ColumnElement[bool], reason: str) -> int:
        now = self.now()
        with self._orm() as s:
            rows = list(s.scalars(sa.select(WebSessionRow).where(
                where, WebSessionRow.revoked_at.is_(None))))
            live = sum(self._live(_session(r, ""), now) for r in rows)
            for r in rows:
                r.revoked_at = now
                r.revoked_reason = reason[:64]
            s.commit()
        self._forget_all()
        return live
