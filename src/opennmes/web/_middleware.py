"""ASGI middleware of the app: who the client really is, and how large a request may be.

- :class:`ClientAddress` sets the request's client address. ``X-Forwarded-For`` is read only
  when the direct peer of the connection is one of ``Settings.trusted_proxies``; then the
  client is the right-most address of the header that is not itself a trusted proxy. Other
  forwarding headers (``Forwarded``, ``X-Real-IP``) are never read. Serve the app with the
  server's own proxy handling off (``nmes serve`` does; ``uvicorn --no-proxy-headers``).
- :class:`BodyLimit` gives requests without a login the small limit
  ``Settings.anonymous_max_body_size``; logged-in users get ``Settings.max_body_size``. A
  body over the limit is refused with 413 before it is read: by its ``Content-Length``
  before the app is called, or, for a chunked body, by Starlette's
  ``RequestBodyLimitMiddleware`` as soon as it passes the limit, before any form is
  parsed.
- :class:`Language` puts the reader's language in ``request.state.lang``: the one chosen with
  the language switch (the ``nmes_lang`` cookie) or else the best match of the browser's
  ``Accept-Language`` (:func:`opennmes.i18n.negotiate`); a logged-in user's own language
  (account page) replaces the browser's (:func:`opennmes.web._app.language`) but not the
  switch's; responses say the language used in ``Content-Language``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import Request
from starlette.responses import Response

from opennmes.i18n import DEFAULT_LANGUAGE, LANGUAGES, negotiate
from opennmes.web._sessions import WebSessions

__all__ = ["TrustedProxies", "ClientAddress", "BodyLimit", "Language", "SESSION_KEY",
           "LANG_COOKIE"]

SESSION_KEY = "sid"  # the login session's token in the signed cookie
LANG_COOKIE = "nmes_lang"  # the language chosen with the switch (one of i18n.LANGUAGES)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _ip(text: str) -> _Address | None:
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class TrustedProxies:
    """The reverse proxies whose ``X-Forwarded-For`` is believed.

    Parameters
    ----------
    networks : sequence of str
        Addresses or networks (``"127.0.0.1"``, ``"10.0.0.0/8"``); empty trusts nobody.
    """

    def __init__(self, networks: tuple[str, ...] | list[str]):
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    def trusts(self, address: _Address) -> bool:
        """True when ``address`` is one of the trusted proxies."""
        return any(address.version == n.version and address in n for n in self.networks)

    def client_of(self, peer: str, forwarded_for: list[str]) -> str:
        """The client address of a request from ``peer`` carrying these ``X-Forwarded-For``
        header values (in order).

        The header is ignored unless ``peer`` is trusted. Then it is read from the right: each
        trusted proxy is skipped and the first other address is the client. An entry that is
        not an IP address stops the walk at the last trusted hop (so a garbled header never
        names a client of its choice).
        """
        address = _ip(peer)
        if address is None or not self.trusts(address) or not forwarded_for:
            return peer
        hops = [hop for value in forwarded_for for hop in value.split(",")]
        client = str(address)
        for hop in reversed(hops):
            ip = _ip(hop)
            if ip is None:
                return client
            client = str(ip)
            if not self.trusts(ip):
                return client
        return client


class ClientAddress:
    """Pure ASGI middleware: puts the real client address in ``scope["client"]`` (the peer
    of the connection is kept in ``request.state.peer``)."""

    def __init__(self, app: Any, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            peer = scope.get("client")
            host = peer[0] if peer else "unknown"
            scope.setdefault("state", {})["peer"] = host
            if self.trusted.networks:
                values = [v.decode("latin-1") for k, v in scope.get("headers", ())
                          if k == b"x-forwarded-for"]
                client = self.trusted.client_of(host, values)
                if client != host:
                    scope["client"] = (client, 0)
        await self.app(scope, receive, send)


class BodyLimit:
    """Pure ASGI middleware, inside the session middleware: a request that is not from a
    live login may carry at most ``anonymous`` bytes of body (safe methods always count as
    not logged in: they carry no body), one from a login at most ``logged_in`` bytes.

    A request whose ``Content-Length`` is over its limit gets ``refuse(request)`` (a 413
    page) without the app being called; a chunked body is cut off by Starlette's
    ``RequestBodyLimitMiddleware`` as soon as it passes the limit (a 413 ``HTTPException``
    raised where the app reads it). ``request.state.body_limit`` is (limit, anonymous).
    """

    def __init__(self, app: Any, anonymous: int, logged_in: int, sessions: WebSessions,
                 refuse: Callable[[Request], Response]) -> None:
        self.app = app
        self.anonymous = anonymous
        self.logged_in = logged_in
        self.sessions = sessions
        self.refuse = refuse
        self._small = RequestBodyLimitMiddleware(app, max_body_size=anonymous)
        self._large = RequestBodyLimitMiddleware(app, max_body_size=logged_in)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from_login = scope["method"] not in _SAFE_METHODS and await self._from_login(scope)
        limit = self.logged_in if from_login else self.anonymous
        scope.setdefault("state", {})["body_limit"] = (limit, not from_login)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            response = await run_in_threadpool(self.refuse, Request(scope, receive))
            await response(scope, receive, send)
            return
        await (self._large if from_login else self._small)(scope, receive, send)

    async def _from_login(self, scope: Any) -> bool:
        token = scope.get("session", {}).get(SESSION_KEY)
        if not isinstance(token, str):
            return False
        ws = self.sessions.cached(token)
        if ws is False:
            ws = await run_in_threadpool(self.sessions.resolve, token)
        return ws is not None


def _content_length(scope: Any) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None


class Language:
    """Pure ASGI middleware: ``scope["state"]["lang"]`` is the language of the reader (the
    ``nmes_lang`` cookie when it names one of the app's languages, else the browser's
    ``Accept-Language``), and HTTP responses carry it as ``Content-Language``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        accept, chosen = None, None
        for key, value in scope.get("headers", ()):
            if key == b"accept-language":
                accept = value.decode("latin-1")
            elif key == b"cookie":
                chosen = _cookie(value.decode("latin-1"), LANG_COOKIE) or chosen
        state = scope.setdefault("state", {})
        state["lang"] = negotiate(accept, chosen)
        state["lang_chosen"] = chosen in LANGUAGES  # the switch beats the account's setting
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_language(message: Any) -> None:
            if message["type"] == "http.response.start":
                # read now: the logged-in user's own language may have replaced the browser's
                lang = str(state.get("lang", DEFAULT_LANGUAGE))
                headers = list(message.get("headers", []))
                headers.append((b"content-language", lang.encode("ascii")))
                headers.append((b"vary", b"Accept-Language, Cookie"))
                message = dict(message, headers=headers)
            await send(message)

        await self.app(scope, receive, send_with_language)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value.strip().strip('"')
    return None
