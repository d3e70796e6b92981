"""Configuration: typed settings; a wrong or missing key fails at start naming file, key and expectation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hub import config
from hub.config import Role
from tests.helpers import cli

CEBHUB = str(Path(sys.executable).parent / "cebhub")


def test_init_writes_a_configuration_that_loads(ws):
    settings = config.load(ws)
    assert settings.hub.dxp_id == "DXPEDCCEB0000002"
    assert settings.console.port == 8080
    assert settings.routes["CEB311Message"] == ["customs", "inspection"]
    for folder in ("inbox", "outbox", "archive", "quarantine", "claims", "keys"):
        assert (ws.root / folder).is_dir()
    assert (ws.keys / "hub.cert.pem").is_file() and (ws.root / "cebhub.db").is_file()


def test_init_keeps_an_existing_configuration(ws):
    text = ws.config_file.read_text() + "\n# operator's note\n"
    ws.config_file.write_text(text)
    assert cli(ws, "init") == 0
    assert ws.config_file.read_text() == text


def test_partner_add_keeps_comments_and_routes_by_role(hub_ws):
    settings = config.load(hub_ws)
    assert "cebhub workspace configuration" in hub_ws.config_file.read_text()
    assert [p.id for p in settings.route_targets("CEB311Message")] == ["customs", "inspection"]
    assert settings.partner("platform").role == Role.PLATFORM
    assert settings.partner("platform").certificates[0].startswith("keys/partners/platform/")


def _run_with(ws, text: str) -> subprocess.CompletedProcess:
    ws.config_file.write_text(text)
    return subprocess.run(
        [CEBHUB, "-w", str(ws.root), "run", "--once"], capture_output=True, text=True
    )


def test_wrong_value_names_file_key_and_expectation(ws):
    done = _run_with(ws, '[hub]\nbatch_size = "many"\n[partners.p1]\nrole = "shipper"\n')
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"{ws.config_file}: hub.batch_size: Input should be a valid integer" in done.stderr
    assert "partners.p1.role: Input should be 'platform'" in done.stderr


def test_unknown_and_missing_keys_are_reported(ws):
    done = _run_with(ws, "[hub]\nbatchsize = 5\n[partners.p1]\nname = 'x'\n")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "hub.batchsize: Extra inputs are not permitted" in done.stderr
    assert "partners.p1.role: Field required" in done.stderr


def test_broken_toml_and_missing_file(ws, tmp_path):
    done = _run_with(ws, "[hub\n")
    assert done.returncode == 2 and "not valid TOML" in done.stderr
    empty = tmp_path / "nowhere"
    done = subprocess.run([CEBHUB, "-w", str(empty), "status"], capture_output=True, text=True)
    assert done.returncode == 2 and "cebhub init" in done.stderr and "Traceback" not in done.stderr
