"""Shared set-up of the console tests: two enterprises' records, users of every role, clients."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub import config
from hub.console.app import create_app
from hub.console.auth import add_user, create_token
from hub.generator import DEMO_PARTIES, make_purchases, order_message, to_bytes
from hub.runner import Hub
from hub.store.db import engine_for
from hub.workspace import Workspace
from tests.helpers import cli

# Enterprise B: a second platform whose records operator A must never see.
OTHER_PARTIES = replace(
    DEMO_PARTIES,
    ebp_code="3301960011",
    ebp_name="西湖跨境电商平台有限公司",
    ebc_code="3301960012",
    ebc_name="钱塘优品贸易有限公司",
    agent_code="3301980015",
)
A_CODES = [DEMO_PARTIES.ebp_code, DEMO_PARTIES.ebc_code, DEMO_PARTIES.agent_code]
B_CODES = [OTHER_PARTIES.ebp_code, OTHER_PARTIES.ebc_code, OTHER_PARTIES.agent_code]
USERS = {
    "alice": ("operator", A_CODES),
    "bob": ("operator", B_CODES),
    "carol": ("customs", []),
    "ivan": ("inspection", []),
    "olga": ("ops", []),
    "root": ("admin", []),
}

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def password(name: str) -> str:
    return f"pw-{name}-secret"


@dataclass
class World:
    ws: Workspace
    a_orders: list[str]  # orderNo of enterprise A's orders
    b_orders: list[str]

    @property
    def settings(self):
        return config.load(self.ws)

    @property
    def engine(self):
        return engine_for(self.settings, self.ws)

    def app(self):
        return create_app(self.ws, self.settings)

    def client(self, user: str | None = None) -> TestClient:
        c = TestClient(self.app(), follow_redirects=False)
        if user:
            login(c, user)
        return c

    def token(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {create_token(self.engine, user)}"}

    def process(self) -> None:
        Hub(self.ws, self.settings).run_once()


def csrf_of(html: str) -> str:
    m = CSRF.search(html)
    assert m, "no CSRF field on the page"
    return m.group(1)


def login(client: TestClient, user: str) -> None:
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"name": user, "password": password(user), "csrf": token})
    assert r.status_code == 303, r.text


def page_csrf(client: TestClient, path: str = "/orders") -> str:
    return csrf_of(client.get(path).text)


def build_world(hub_ws: Workspace, keys) -> World:
    ws = hub_ws
    assert (
        cli(ws, "partner", "add", "platform2", "--role", "platform", "--codes",
            f"{OTHER_PARTIES.ebp_code},{OTHER_PARTIES.ebc_code}",
            "--cert", keys["stranger"].cert_path) == 0
    )  # fmt: skip
    a = make_purchases(3, seed=11)
    b = make_purchases(2, seed=12, parties=OTHER_PARTIES)
    for pid, purchases, parties, key in (
        ("platform", a, DEMO_PARTIES, keys["platform"]),
        ("platform2", b, OTHER_PARTIES, keys["stranger"]),
    ):
        data = to_bytes(order_message(purchases, parties, sign=key.sign))
        (ws.inbox_of(pid)).mkdir(parents=True, exist_ok=True)
        (ws.inbox_of(pid) / f"orders-{pid}.xml").write_bytes(data)
    world = World(ws, [p.order_no for p in a], [p.order_no for p in b])
    world.process()
    for name, (role, codes) in USERS.items():
        add_user(world.engine, name, role, codes, password(name))
    return world


@pytest.fixture
def world(hub_ws, keys) -> World:
    return build_world(hub_ws, keys)


@dataclass
class ListWorld:
    """`World` plus declaration lists: A's temporary ones, B's one, guarantee and risk set."""

    world: World
    temporary: list  # A's purchases whose lists are temporary
    b_list: object  # B's purchase, its list temporary

    def list_id(self, cop_no: str) -> int:
        from hub.clearance.tables import lists

        with self.world.engine.connect() as conn:
            return conn.execute(select(lists.c.id).where(lists.c.cop_no == cop_no)).scalar_one()


def build_lists(world: World, keys, n: int = 4) -> ListWorld:
    """A's n purchases with order, payment and waybill, their lists saved as temporary."""
    from hub.generator import list_message
    from tests.clearance_support import configure, purchase, send_documents, send_list, submit

    ws = world.ws
    assert cli(ws, "guarantee", "set", DEMO_PARTIES.assure_code, "100000") == 0
    configure(ws, risk={"value_above": 0})  # every accepted list waits for the officers
    assert (
        cli(ws, "partner", "add", "agent2", "--role", "agent", "--codes", OTHER_PARTIES.agent_code,
            "--cert", keys["operator"].cert_path) == 0
    )  # fmt: skip
    temporary = [purchase(500 + i) for i in range(n)]
    send_documents(ws, keys, temporary)
    send_list(ws, keys, temporary, app_status="1")
    b = make_purchases(1, seed=77, parties=OTHER_PARTIES)[0]
    submit(
        ws, "agent2", list_message([b], OTHER_PARTIES, app_status="1", sign=keys["operator"].sign)
    )
    world.process()
    return ListWorld(world, temporary, b)
