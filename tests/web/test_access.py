"""Access control: every route tried with every role and with nobody logged in; another
patient's record refused; every form refused without its CSRF token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute

from opennmes.stim import load_program_text
from opennmes.store import Store

from .conftest import Client, make_client

STAFF = {"admin", "clinician"}
EVERYONE = {"admin", "clinician", "patient"}
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout")}

# (method, path) -> roles allowed; patient-scoped routes are further limited to the
# clinician's own patients and the patient's own record (tested below).
RULES: dict[tuple[str, str], set[str]] = {
    ("GET", "/"): EVERYONE,
    ("GET", "/vendor/plotly.min.js"): {"public"},
    ("POST", "/language"): {"public"},  # the language switch (a cookie, nothing else)
    ("GET", "/admin/users"): {"admin"},
    ("POST", "/admin/users"): {"admin"},
    ("GET", "/audit"): {"admin"},
    ("POST", "/admin/users/{user_id}/deactivate"): {"admin"},
    ("POST", "/admin/users/{user_id}/activate"): {"admin"},
    ("POST", "/admin/users/{user_id}/logout"): {"admin"},
    ("POST", "/admin/sessions/{session_id}/end"): {"admin"},
    ("GET", "/account"): EVERYONE,
    ("POST", "/account/password"): EVERYONE,
    ("POST", "/account/language"): EVERYONE,
    ("GET", "/patients"): STAFF,
    ("POST", "/patients"): STAFF,
    ("GET", "/patients/{patient_id}"): STAFF,
    ("POST", "/patients/{patient_id}/account"): STAFF,
    ("GET", "/patients/{patient_id}/screening"): STAFF,
    ("POST", "/patients/{patient_id}/screening"): STAFF,
    ("GET", "/patients/{patient_id}/prescribe"): STAFF,
    ("POST", "/patients/{patient_id}/prescribe"): STAFF,
    ("POST", "/patients/{patient_id}/protocol-check"): STAFF,
    ("GET", "/patients/{patient_id}/outcomes"): STAFF,
    ("POST", "/patients/{patient_id}/outcomes"): STAFF,
    ("GET", "/patients/{patient_id}/progress"): STAFF,
    ("POST", "/patients/{patient_id}/sessions"): STAFF,
    ("GET", "/sessions/{session_id}"): EVERYONE,
    ("GET", "/home"): {"patient"},
    ("POST", "/home/start"): {"patient"},
    ("GET", "/live/{run_id}"): EVERYONE,
    ("GET", "/live/{run_id}/data"): EVERYONE,
    ("POST", "/live/{run_id}/stop"): EVERYONE,
    ("POST", "/live/{run_id}/intensity"): EVERYONE,
    ("POST", "/live/{run_id}/pause"): EVERYONE,
    ("POST", "/live/{run_id}/comfort"): EVERYONE,
    ("POST", "/live/{run_id}/trigger"): EVERYONE,
}
USER_OF_ROLE = {"admin": "admin", "clinician": "clin", "patient": "pat"}
PROGRAM = """
name: Access test
channels:
  - name: quadriceps
    electrode: {area: 80 cm2, site: quadriceps, side: right}
    waveform: symmetric-biphasic
    frequency: 35 Hz
    pulse_width: 300 us
    amplitude: 40 mA
    ramp_up: 2 s
    on: 10 s
    ramp_down: 1 s
    off: 30 s
repetitions: 15
"""


def _flat(routes: Any) -> Iterator[Any]:
    for r in routes:
        inner = getattr(r, "original_router", None)  # FastAPI >= 0.16x keeps included routers
        yield from (_flat(inner.routes) if inner is not None else [r])


def app_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every API route of the app (our routers have no prefixes)."""
    out = []
    for r in _flat(app.routes):
        if isinstance(r, APIRoute):
            out += [(m, r.path) for m in sorted(r.methods) if m != "HEAD"]
    return out


def recorded_session(store: Store, patient_id: str) -> int:
    program = load_program_text(PROGRAM)
    version = store.save_program(program.to_file_dict(), program.name)
    writer = store.begin_session(patient_id, version.id, "sim://")
    writer.log_event("start", 0.0, {})
    writer.finish("completed")
    return writer.id


@pytest.fixture()
def world(app, store: Store) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Own and foreign session and live-run ids for TKA-001 (clin, pat) and TKA-002, and the
    id of pat2's account."""
    from opennmes.web import Accounts

    users = {u.username: u for u in Accounts(store).list_users()}
    clin, clin2 = users["clin"], users["clin2"]
    live = app.state.live
    program = load_program_text(PROGRAM)
    runs = {"own": live.start(clin, "TKA-001", program, "sim://"),
            "foreign": live.start(clin2, "TKA-002", program, "sim://")}
    yield {"session": {"own": recorded_session(store, "TKA-001"),
                       "foreign": recorded_session(store, "TKA-002")},
           "run": {k: r.id for k, r in runs.items()},
           "user": users["pat2"].id}  # accounts the admin routes act on
    live.stop_all("test over")


def fill(path: str, world: dict[str, Any], which: str) -> str:
    patient = "TKA-001" if which == "own" else "TKA-002"
    return (path.replace("{patient_id}", patient)
            .replace("{session_id}", str(world["session"][which]))
            .replace("{run_id}", world["run"][which])
            .replace("{user_id}", str(world["user"])))


def call(client: Client, method: str, url: str, *, csrf: bool = True) -> Any:
    if method == "GET":
        return client.get(url, follow_redirects=False)
    data = {"csrf_token": client.csrf} if csrf else {}
    return client.post(url, data=data, follow_redirects=False)


def test_every_route_has_a_rule(app) -> None:  # type: ignore[no-untyped-def]
    routes = set(app_routes(app))
    missing = routes - set(RULES) - PUBLIC
    assert not missing, f"routes without an access rule in this test: {sorted(missing)}"
    assert ("POST", "/live/{run_id}/stop") in routes


def test_every_route_with_nobody_logged_in(app, world) -> None:  # type: ignore[no-untyped-def]
    client = make_client(app)  # has a CSRF token from the login page, but no login
    for method, path in sorted(set(app_routes(app)) - PUBLIC):
        if RULES[(method, path)] == {"public"}:
            continue
        r = call(client, method, fill(path, world, "own"))
        if method == "GET" and not path.endswith("/data"):
            assert r.status_code == 303, (method, path, r.status_code)
            assert r.headers["location"].startswith("/login?next="), (method, path)
        else:
            assert r.status_code == 401, (method, path, r.status_code)


@pytest.mark.parametrize("role", ["admin", "clinician", "patient"])
def test_every_route_with_every_role(app, world, role: str) -> None:  # type: ignore[no-untyped-def]
    client = make_client(app, USER_OF_ROLE[role])
    for method, path in sorted(set(app_routes(app)) - PUBLIC,
                               key=lambda mp: (mp[1].endswith("/stop"), mp)):
        allowed = RULES[(method, path)]
        r = call(client, method, fill(path, world, "own"))
        if "public" in allowed or role in allowed:
            assert r.status_code not in (401, 403), (role, method, path, r.status_code)
            assert r.status_code < 500, (role, method, path, r.status_code, r.text[:300])
        else:
            assert r.status_code == 403, (role, method, path, r.status_code)


@pytest.mark.parametrize("username", ["clin", "pat"])
def test_another_patients_data_is_refused(app, world, username: str) -> None:  # type: ignore[no-untyped-def]
    client = make_client(app, username)
    for method, path in sorted(set(app_routes(app)) - PUBLIC):
        if not any(k in path for k in ("{patient_id}", "{session_id}", "{run_id}")):
            continue
        r = call(client, method, fill(path, world, "foreign"))
        assert r.status_code == 403, (username, method, path, r.status_code)
    # unknown ids look the same as foreign ones (no probing)
    r = client.get("/patients/NO-SUCH", follow_redirects=False)
    assert r.status_code == 403
    # the foreign run is still running: nothing it was sent took effect
    assert not app.state.live.get(world["run"]["foreign"]).ended


def test_clinician_lists_only_own_patients(app) -> None:  # type: ignore[no-untyped-def]
    html = make_client(app, "clin").page("/patients")
    assert "TKA-001" in html and "TKA-002" not in html
    html = make_client(app, "admin").page("/patients")
    assert "TKA-001" in html and "TKA-002" in html


def test_forms_without_csrf_token_are_refused(app, world, store: Store) -> None:  # type: ignore[no-untyped-def]
    admin = make_client(app, "admin")
    posts = [(m, p) for m, p in app_routes(app) if m == "POST"]
    assert len(posts) >= 10
    before = (len(store.list_patients()), len(app.state.accounts.list_users()))
    for _, path in posts:
        url = fill(path, world, "own")
        r = admin.post(url, data={"username": "x"}, follow_redirects=False)
        assert r.status_code == 403, (path, r.status_code)
        assert "CSRF" in r.text
        r = admin.post(url, data={"csrf_token": "forged-token-0123456789abcdef0123"},
                       follow_redirects=False)
        assert r.status_code == 403, (path, r.status_code)
    assert (len(store.list_patients()), len(app.state.accounts.list_users())) == before
    assert not app.state.live.get(world["run"]["own"]).ended  # the stop without token did nothing
    # the header form of the token is accepted (used by the live page's script)
    r = admin.post(fill("/live/{run_id}/pause", world, "own"), data={"command": "pause"},
                   headers={"X-CSRF-Token": admin.csrf, "X-Requested-With": "fetch"})
    assert r.status_code == 200 and r.json()["error"] is None
