"""Settings of the web app; insecure defaults are refused.

The secret key that signs session cookies is given explicitly (argument or the
``NMES_SECRET_KEY`` environment variable) or generated once and stored, readable by the owner
only, in the user data directory (``platformdirs.user_data_dir("opennmes")/web-secret.key``).
A key that is short or a well-known placeholder is refused.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from opennmes.errors import NmesError

__all__ = ["Settings", "SECRET_ENV_VAR", "MIN_SECRET_LENGTH", "WebConfigError"]

log = logging.getLogger(__name__)

SECRET_ENV_VAR = "NMES_SECRET_KEY"
MIN_SECRET_LENGTH = 32
_PLACEHOLDERS = {"secret", "changeme", "change-me", "password", "dev", "development", "test",
                 "insecure", "default", "please-change-me"}
_SECRET_FILE = "web-secret.key"


class WebConfigError(NmesError):
    """A web setting is missing or insecure."""


def _check_secret(key: str, source: str) -> str:
    key = key.strip()
    if key.lower() in _PLACEHOLDERS or len(set(key)) < 8:
        raise WebConfigError(f"the secret key from {source} is a placeholder or too uniform; "
                             f"leave it out to have one generated, or give "
                             f"{MIN_SECRET_LENGTH}+ random characters")
    if len(key) < MIN_SECRET_LENGTH:
        raise WebConfigError(f"the secret key from {source} has {len(key)} characters, fewer "
                             f"than the minimum {MIN_SECRET_LENGTH}; leave it out to have one "
                             "generated")
    return key


def _stored_secret(data_dir: Path) -> str:
    """Read the stored key, or generate and store one (mode 0600)."""
    path = data_dir / _SECRET_FILE
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if os.name != "nt" and mode & 0o077:
            raise WebConfigError(f"the secret key file {path} is readable by others (mode "
                                 f"{mode:o}); run `chmod 600 {path}` or delete it to get a new "
                                 "key (everyone will have to log in again)")
        return _check_secret(path.read_text(encoding="ascii"), str(path))
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key)
    log.info("generated a new web secret key in %s", path)
    return key


@dataclass(frozen=True)
class Settings:
    """Configuration of the web app.

    Attributes
    ----------
    secret_key : str
        Signs session cookies (at least 32 characters).
    db_url : str or None
        Database URL; None means the store's default (``NMES_DB_URL`` or the user data dir).
    cookie_secure : bool
        Send the session cookie only over HTTPS (or to localhost, which browsers treat as
        secure). Turn off only for plain-HTTP tests with a non-browser client.
    session_max_age : float
        Lifetime of a login, in seconds (counted from the login, whatever happens).
    session_idle_timeout : float
        A login not used for this long ends, in seconds.
    login_max_failures : int
        Failed logins allowed per user name and client address within ``login_window``.
    login_window : float
        Window of the login rate limit, in seconds.
    lockout_max_failures : int
        Failed logins for one account, from any address, within ``lockout_window`` that lock
        it for ``lockout_duration`` (even the right password is refused meanwhile).
    lockout_window : float
        Window of the account lockout, in seconds.
    lockout_duration : float
        How long a locked account stays locked, in seconds.
    trusted_proxies : tuple of str
        Addresses or networks (``"127.0.0.1"``, ``"10.0.0.0/8"``) of reverse proxies whose
        ``X-Forwarded-For`` header names the client. Empty (the default): the header is
        ignored and the client is the direct peer of the connection.
    max_body_size : int
        Largest request body accepted from a logged-in user, in bytes; larger ones are
        refused with 413 before they are read.
    anonymous_max_body_size : int
        Largest request body accepted without a login (the login form), in bytes.
    live_period : float
        Period of the live-view updates pushed to the browser, in seconds.
    device_urls : tuple of str
        Stimulators offered when starting a session; ``sim://PRESET?sfreq=...`` plays against
        a virtual patient.
    sim_stall_margin : float
        Watchdog margin of simulated devices, in s (how far the device may run past the last
        window handed to it before the output is stopped). Hardware keeps the runner's own.
    """

    secret_key: str
    db_url: str | None = None
    cookie_secure: bool = True
    session_max_age: float = 8 * 3600.0
    session_idle_timeout: float = 2 * 3600.0
    login_max_failures: int = 5
    login_window: float = 300.0
    lockout_max_failures: int = 10
    lockout_window: float = 900.0
    lockout_duration: float = 900.0
    trusted_proxies: tuple[str, ...] = ()
    max_body_size: int = 1024 * 1024
    anonymous_max_body_size: int = 16 * 1024
    live_period: float = 0.05
    device_urls: tuple[str, ...] = field(default=("sim://healthy-adult?sfreq=500&seed=1",
                                                  "sim://post-surgery?sfreq=500&seed=1",
                                                  "sim://"))
    sim_stall_margin: float = 0.25

    def __post_init__(self) -> None:
        _check_secret(self.secret_key, "the settings")
        durations = ("session_max_age", "session_idle_timeout", "login_window",
                     "lockout_window", "lockout_duration", "live_period")
        bad = [name for name in durations if not getattr(self, name) > 0]
        if bad:
            raise WebConfigError(f"{', '.join(bad)}: durations in seconds must be > 0")
        for name in ("login_max_failures", "lockout_max_failures"):
            if getattr(self, name) < 1:
                raise WebConfigError(f"{name} = {getattr(self, name)} must be >= 1")
        if not 0 < self.anonymous_max_body_size <= self.max_body_size:
            raise WebConfigError(
                f"anonymous_max_body_size = {self.anonymous_max_body_size} bytes must be > 0 "
                f"and at most max_body_size = {self.max_body_size} bytes")
        if isinstance(self.trusted_proxies, str):
            raise WebConfigError("trusted_proxies is a tuple of addresses or networks, e.g. "
                                 "('127.0.0.1',), not one string")
        object.__setattr__(self, "trusted_proxies", tuple(self.trusted_proxies))
        for entry in self.trusted_proxies:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise WebConfigError(f"trusted_proxies: {entry!r} is not an IP address or "
                                     "network (e.g. 127.0.0.1, ::1 or 10.0.0.0/8)") from None
        if not self.device_urls:
            raise WebConfigError("device_urls must name at least one stimulator, e.g. sim://")

    @classmethod
    def load(cls, *, secret_key: str | None = None, db_url: str | None = None,
             data_dir: str | Path | None = None, **options: object) -> Settings:
        """Settings with the secret key from the argument, ``NMES_SECRET_KEY`` or the key file.

        Parameters
        ----------
        secret_key : str, optional
            Explicit key; when None the environment, then the stored (or new) key is used.
        db_url : str, optional
            Database URL (see :func:`opennmes.store.open_store`).
        data_dir : path, optional
            Where the key file lives; default ``platformdirs.user_data_dir("opennmes")``.
        **options
            Other fields of :class:`Settings`.
        """
        if secret_key is not None:
            key = _check_secret(secret_key, "the argument")
        elif os.environ.get(SECRET_ENV_VAR, "").strip():
            key = _check_secret(os.environ[SECRET_ENV_VAR], SECRET_ENV_VAR)
        else:
            if data_dir is None:
                import platformdirs

                data_dir = platformdirs.user_data_dir("opennmes")
            key = _stored_secret(Path(data_dir))
        return cls(secret_key=key, db_url=db_url, **options)  # type: ignore[arg-type]
