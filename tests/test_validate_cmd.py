"""`cebhub validate`: verdicts, messages and exit codes on real files."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from hub.cli import main
from hub.envelope import build_envelope
from tests.helpers import SAMPLES


def _run(capsys: pytest.CaptureFixture[str], *files: Path) -> tuple[int, str]:
    code = main(["validate", *map(str, files)])
    return code, capsys.readouterr().out


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _bad_order(tmp_path: Path) -> Path:
    data = (SAMPLES / "CEB311Message.xml").read_bytes()
    data = data.replace(b"<ceb:orderNo>order20160321116421002</ceb:orderNo>", b"", 1)
    data = data.replace(
        b"<ceb:freight>5000</ceb:freight>", b"<ceb:freight>1.123456</ceb:freight>", 1
    )
    return _write(tmp_path, "bad311.xml", data)


def test_official_samples_are_ok(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(SAMPLES.glob("CEB*Message.xml"))
    code, out = _run(capsys, *files)
    assert code == 0
    assert out.count(": OK") == len(files) == 16


def test_every_error_is_listed_with_path_and_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = _run(capsys, _bad_order(tmp_path))
    assert code == 1
    assert "bad311.xml: 2 errors" in out
    assert "CEB311Message/Order[1]/OrderHead: missing required element 'orderNo'" in out
    assert "CEB311Message/Order[1]/OrderHead/freight: freight: value '1.123456'" in out
    assert "line " in out


def test_one_bad_file_fails_the_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out = _run(capsys, SAMPLES / "CEB621Message.xml", _bad_order(tmp_path))
    assert code == 1
    assert "CEB621Message.xml: OK" in out


def test_envelope_and_its_payload(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    good = build_envelope(
        (SAMPLES / "CEB621Message.xml").read_bytes(),
        sender_id="DXPENT0000458763",
        receiver_id="DXPEDCCEB0000002",
        msg_type="CEB621Message",
    )
    bad = build_envelope(
        _bad_order(tmp_path).read_bytes(),
        sender_id="DXPENT0000458763",
        receiver_id="DXPEDCCEB0000002",
        msg_type="CEB311Message",
    )
    bad.set("ver", "9")
    good_file = _write(tmp_path, "good.xml", etree.tostring(good))
    bad_file = _write(tmp_path, "bad.xml", etree.tostring(bad))
    assert _run(capsys, good_file) == (0, f"{good_file}: OK\n")
    code, out = _run(capsys, bad_file)
    assert code == 1
    assert "DxpMsg" in out and "ver" in out
    assert "DxpMsg/Data: CEB311Message/Order[1]/OrderHead/freight" in out


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>', "DOCTYPE"),
        (b"<CEB311Message", "not well-formed"),
        (b'<CEB303Message xmlns="http://www.chinaport.gov.cn/ceb"/>', "is not a message"),
    ],
)
def test_unreadable_or_unknown_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data: bytes, words: str
) -> None:
    code, out = _run(capsys, _write(tmp_path, "x.xml", data))
    assert code == 1
    assert words in out


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out = _run(capsys, tmp_path / "nope.xml")
    assert code == 1
    assert "cannot read" in out


def test_installed_script(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = Path(sys.executable).with_name("cebhub")
    if not script.exists():
        pytest.skip("cebhub is not installed in this environment")
    done = subprocess.run(
        [str(script), "validate", str(SAMPLES / "CEB711Message.xml"), str(_bad_order(tmp_path))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "CEB711Message.xml: OK" in done.stdout
    assert "orderNo" in done.stdout
