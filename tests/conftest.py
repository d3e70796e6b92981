"""Shared fixtures: partner keys made once per run, and a fresh workspace with partners."""

from __future__ import annotations

import pytest

from hub.cli.workspace_cmd import init_workspace
from hub.generator import DEMO_PARTIES
from hub.signing import certificate_pem, new_self_signed, private_key_pem, write_pem
from hub.store.db import dispose_all
from hub.workspace import Workspace
from tests.helpers import PartyKey, cli

pytest_plugins = ["tests.sshd_fixture", "tests.rabbit"]

PARTY_NAMES = ("platform", "payment", "logistics", "agent", "operator", "stranger")


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> dict[str, PartyKey]:
    folder = tmp_path_factory.mktemp("keys")
    made = {}
    for name in PARTY_NAMES:
        key, cert = new_self_signed(f"{name} test certificate")
        key_path, cert_path = folder / f"{name}.key.pem", folder / f"{name}.cert.pem"
        write_pem(key_path, private_key_pem(key), private=True)
        write_pem(cert_path, certificate_pem(cert))
        made[name] = PartyKey(key, cert, key_path, cert_path)
    return made


@pytest.fixture
def ws(tmp_path) -> Workspace:
    """An initialised, empty workspace."""
    workspace = Workspace(tmp_path / "ws")
    init_workspace(workspace)
    yield workspace
    dispose_all()


@pytest.fixture
def hub_ws(ws, keys) -> Workspace:
    """A workspace with the demo platform, payment, logistics and agent, customs and inspection."""
    p = DEMO_PARTIES
    partners = [
        ("platform", "platform", f"{p.ebp_code},{p.ebc_code}", keys["platform"]),
        ("payment", "payment", p.pay_code, keys["payment"]),
        ("logistics", "logistics", p.logistics_code, keys["logistics"]),
        ("agent", "agent", p.agent_code, keys["agent"]),
    ]
    for pid, role, codes, key in partners:
        assert (
            cli(
                ws, "partner", "add", pid, "--role", role, "--codes", codes, "--cert", key.cert_path
            )
            == 0
        )
    assert cli(ws, "partner", "add", "customs", "--role", "customs", "--codes", "CUSTOMS") == 0
    assert cli(ws, "partner", "add", "inspection", "--role", "inspection", "--codes", "CIQ") == 0
    return ws
