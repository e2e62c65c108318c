"""Request limits: oversize bodies are refused with 413 before they are read or parsed (the
body generators count what the app pulled); a deeply nested protocol upload is a 400 that
names the problem."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from anyio.from_thread import start_blocking_portal

from .conftest import make_client
from .test_bad_input import error_of

CHUNK = 64 * 1024
ANONYMOUS_LIMIT = 16 * 1024  # Settings.anonymous_max_body_size (default)
LOGIN_LIMIT = 1024 * 1024  # Settings.max_body_size (default)
BOUNDARY = "limit-test-boundary"
HEAD = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.yaml"'
        f"\r\nContent-Type: application/yaml\r\n\r\n").encode()
TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()


def post_counting(app, url: str, total: int, *, declare_length: bool,  # type: ignore[no-untyped-def]
                  cookies: httpx.Cookies | None = None, csrf: str | None = None
                  ) -> tuple[httpx.Response, int]:
    """POST a multipart body of ``total`` bytes through the ASGI app, streamed in 64 KiB
    chunks (with its Content-Length, or chunked); returns the response and the number of
    bytes the app pulled from the stream."""
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        pulled += len(HEAD)
        yield HEAD
        left = total - len(HEAD) - len(TAIL)
        while left > 0:
            n = min(CHUNK, left)
            pulled += n
            left -= n
            yield b"x" * n
        pulled += len(TAIL)
        yield TAIL

    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    if declare_length:
        headers["content-length"] = str(total)
    if csrf:
        headers["x-csrf-token"] = csrf

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        jar = dict(cookies) if cookies is not None else None  # the test client's, as names
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver",
                                     cookies=jar) as client:
            return await client.post(url, content=body(), headers=headers)

    # an event loop in its own thread (the browser tests keep one running in this thread)
    with start_blocking_portal() as portal:
        response = portal.call(send)
    return response, pulled


@pytest.mark.parametrize("url", ["/login", "/patients/TKA-001/protocol-check"])
@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
def test_a_100_mb_anonymous_body_is_refused_unread(app, url: str, declare_length: bool) -> None:  # type: ignore[no-untyped-def]
    r, pulled = post_counting(app, url, 100 * 1024 * 1024, declare_length=declare_length)
    if declare_length:
        assert pulled == 0  # refused by its Content-Length: not a byte read
    else:
        assert pulled <= ANONYMOUS_LIMIT + CHUNK  # read only up to the limit
    assert r.status_code == 413
    assert "larger than the 16 KiB accepted before logging in" in r.text
    assert [e for e in app.state.accounts.list_audit() if e.action.startswith("login")] == []


def test_a_logged_in_user_gets_the_larger_limit(app) -> None:  # type: ignore[no-untyped-def]
    c = make_client(app, "clin")
    c.page("/patients/TKA-001/prescribe")
    # over the anonymous limit but under the login's: reaches the route, which checks size
    r, pulled = post_counting(app, "/patients/TKA-001/protocol-check", 512 * 1024,
                              declare_length=False, cookies=c.cookies, csrf=c.csrf)
    assert r.status_code == 400 and "is larger than 256 KiB" in error_of(r.text)
    r, pulled = post_counting(app, "/patients/TKA-001/protocol-check", 100 * 1024 * 1024,
                              declare_length=False, cookies=c.cookies, csrf=c.csrf)
    assert r.status_code == 413 and pulled <= LOGIN_LIMIT + CHUNK
    assert "larger than the 1024 KiB this server accepts" in r.text
    r, pulled = post_counting(app, "/patients/TKA-001/protocol-check", 100 * 1024 * 1024,
                              declare_length=True, cookies=c.cookies, csrf=c.csrf)
    assert r.status_code == 413 and pulled == 0


@pytest.mark.parametrize("text", ["[" * 5000 + "]" * 5000,
                                  "id: deep\nprogram: " + "{a: " * 3000 + "1" + "}" * 3000,
                                  "id: deep\nprogram:\n" + "".join(
                                      " " * i + "- \n" for i in range(1, 700))])
def test_a_deeply_nested_protocol_upload_is_a_clear_400(app, text: str) -> None:  # type: ignore[no-untyped-def]
    c = make_client(app, "clin")
    c.page("/patients/TKA-001/prescribe")
    r = c.post("/patients/TKA-001/protocol-check", data={"csrf_token": c.csrf},
               files={"file": ("deep.yaml", text.encode(), "application/yaml")},
               follow_redirects=False)
    assert r.status_code == 400
    assert "nested too deeply" in error_of(r.text)
    assert error_of(r.text).startswith("protocol file deep.yaml:")
