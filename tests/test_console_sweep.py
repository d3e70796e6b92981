"""Authorisation sweep: every console route and API endpoint, for every role and for nobody."""

# ruff: noqa: F811  (fixtures are imported, then requested by name)
from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select
from starlette.routing import Route

from hub.clearance.tables import lists
from hub.store.tables import deliveries, orders
from tests.console_support import USERS, build_lists, csrf_of, login, world  # noqa: F401

PUBLIC = {
    "/login",
    "/healthz",
    "/readyz",
    "/metrics",
    "/docs",
    "/docs/oauth2-redirect",
    "/openapi.json",
}
PARAM = re.compile(r"{(\w+)}")


def _routes(routes, prefix=""):
    """(method, path) of every route, through included routers."""
    for r in routes:
        if isinstance(r, APIRoute | Route):
            for method in sorted((r.methods or set()) - {"HEAD"}):
                yield method, prefix + r.path
        elif hasattr(r, "original_router"):
            yield from _routes(r.original_router.routes, prefix)


@pytest.fixture
def sweep(world, keys):
    lw = build_lists(world, keys)
    with world.engine.connect() as conn:
        b_order = conn.execute(
            select(orders.c.id).where(orders.c.order_no == world.b_orders[0])
        ).scalar_one()
        b_list = conn.execute(
            select(lists.c.id).where(lists.c.cop_no == lw.b_list.cop_no)
        ).scalar_one()
        a_delivery = conn.execute(select(deliveries.c.id).limit(1)).scalar_one()
    # Enterprise B's records (or ids nobody has) in every path parameter.
    values = {
        "record_id": str(b_order),
        "order_id": str(b_order),
        "list_id": str(b_list),
        "partner": "customs",
        "partner_id": "platform2",
        "delivery_id": str(a_delivery),
    }
    return world, values, b_list


def _fill(path: str, values: dict[str, str], *, payments_guess: bool) -> str:
    if payments_guess and path.startswith(("/payments", "/waybills")):
        values = {**values, "record_id": "999999"}  # B has none: a guessed id
    return PARAM.sub(lambda m: values[m.group(1)], path)


def _b_list_state(world, b_list: int) -> str:
    with world.engine.connect() as conn:
        return conn.execute(select(lists.c.state).where(lists.c.id == b_list)).scalar_one()


def test_every_route_for_every_role(sweep):
    world, values, b_list = sweep
    app = world.app()
    routes = sorted(set(_routes(app.routes)))
    assert len(routes) > 40  # the sweep really walks the console and the API
    before = _b_list_state(world, b_list)
    problems = []
    # Only B's own operator and the admin (a superuser) may change B's list: they go last, and
    # until then nobody may have changed it.
    mayors = ("root", "bob")
    for user in (None, *(u for u in USERS if u not in mayors), *mayors):
        if user == mayors[0]:
            assert _b_list_state(world, b_list) == before, "B's list changed by someone else"
        client = world.client()
        token = {}
        csrf = ""
        if user:
            login(client, user)
            csrf = csrf_of(client.get("/", follow_redirects=True).text)
            token = world.token(user)
        for method, template in routes:
            if template == "/logout":
                continue  # would end the session mid-sweep; logging out is tested elsewhere
            path = _fill(template, values, payments_guess=True)
            api = path.startswith("/api/")
            headers = token if api else {}
            if method == "GET":
                r = client.get(path, headers=headers)
            else:
                body = {"csrf": csrf, "ids": [str(b_list)], "id": str(b_list)}
                if api:
                    r = client.post(path, headers=headers, json={"ids": [b_list], "through": 0})
                else:
                    r = client.post(path, data=body)
            where = f"{user or 'anonymous'} {method} {path} → {r.status_code}"
            if r.status_code >= 500:
                problems.append(f"server error: {where}")
            if template in PUBLIC or (template == "/login"):
                continue
            if user is None:
                expected = {401} if api else {303, 403}
                if r.status_code not in expected:
                    problems.append(f"anonymous got in: {where}")
                elif r.status_code == 303 and "/login" not in r.headers["location"]:
                    problems.append(f"anonymous redirected elsewhere: {where}")
                continue
            if user == "alice" and PARAM.search(template) and r.status_code < 400:
                problems.append(f"operator A reached B's record: {where}")
            role = USERS[user][0]
            if (
                role == "operator"
                and template.startswith(("/review", "/ops"))
                and r.status_code < 400
            ):
                problems.append(f"operator reached an officer/ops screen: {where}")
            if (
                role in ("customs", "inspection")
                and method == "POST"
                and template.startswith("/lists")
                and r.status_code < 400
            ):
                problems.append(f"officer changed a list: {where}")
    assert not problems, "\n".join(problems)


def test_forms_without_their_csrf_token_are_refused_everywhere(sweep):
    world, values, b_list = sweep
    client = world.client("bob")  # B's own operator: only the missing token may stop him
    for method, template in sorted(set(_routes(world.app().routes))):
        if method != "POST" or template.startswith("/api/") or template == "/login":
            continue
        path = _fill(template, values, payments_guess=False)
        r = client.post(path, data={"ids": [str(b_list)]})
        assert r.status_code == 403, f"POST {path} without CSRF → {r.status_code}"
    assert _b_list_state(world, b_list) == "temporary"
