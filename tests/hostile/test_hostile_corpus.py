"""The hostile corpus through a real `cebhub run --once`: right answers, bounded memory, no escape."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.directory import display_name
from hub import config
from hub.store.db import dispose_all, engine_for
from hub.store.tables import deliveries, messages, orders, receipts
from tests.hostile.corpus import ACCEPTED, IGNORED, Case, build_corpus

CEBHUB = str(Path(sys.executable).parent / "cebhub")
SAFE = re.compile(r"^[A-Za-z0-9._-]+$")
RSS_BOUND_MB = 500  # a resource bound: the 100 MB file must be refused unread
MEASURE = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def run_measured(ws) -> tuple[int, float]:
    """`cebhub run --once` in a fresh parent, so its peak RSS is the only child's: (rc, MB)."""
    env = {k: v for k, v in os.environ.items() if k != "CEBHUB_CRASH_AT"}
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, CEBHUB, "-w", str(ws.root), "run", "--once"],
        env=env, capture_output=True, timeout=600, check=True,
    )  # fmt: skip
    rc, kb = out.stdout.split()
    return int(rc), int(kb) / 1024


def drop(ws, case: Case) -> None:
    folder = os.fsencode(ws.inbox_of(case.partner))
    name = case.name if isinstance(case.name, bytes) else os.fsencode(case.name)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(case.data)


def stored_name(case: Case) -> str:
    name = case.name if isinstance(case.name, str) else os.fsdecode(case.name)
    return display_name(name)


def all_files(root: Path) -> set[str]:
    return {os.fsdecode(p) for p in Path(root).rglob("*")}


@pytest.fixture
def canary():
    """A port that records connections: any fetch of an external URL shows here."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        s.setblocking(False)
        yield s


def connections(sock: socket.socket) -> int:
    n = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return n
        conn.close()
        n += 1


def test_every_hostile_file_is_answered_and_nothing_escapes(hub_ws, keys, canary, tmp_path):
    doc = config.read_document(hub_ws)
    doc["console"]["enabled"] = False
    config.write_document(hub_ws, doc)
    url = f"http://127.0.0.1:{canary.getsockname()[1]}"
    cases = build_corpus(keys, url)
    assert len(cases) >= 200
    for case in cases:
        drop(hub_ws, case)
    outside_before = all_files(tmp_path) - all_files(hub_ws.root)

    rc, peak_mb = run_measured(hub_ws)
    print(f"hostile corpus: {len(cases)} cases, peak RSS {peak_mb:.0f} MB")

    assert rc == 0
    assert peak_mb < RSS_BOUND_MB
    assert connections(canary) == 0, "the hub fetched an external URL"
    dispose_all()
    engine = engine_for(config.load(hub_ws), hub_ws)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                messages.c.id, messages.c.file_name, messages.c.state,
                messages.c.return_status, messages.c.return_info,
            )
        ).all()  # fmt: skip
        answered = Counter(conn.execute(select(receipts.c.message_id)).scalars())
        delivery_states = set(conn.execute(select(deliveries.c.state)).scalars())
        order_guids = list(conn.execute(select(orders.c.guid)).scalars())
    by_name: dict[str, list] = {}
    for r in rows:
        by_name.setdefault(r.file_name, []).append(r)

    wrong = []
    for case in cases:
        found = by_name.get(stored_name(case), [])
        if IGNORED in case.expect:
            if found or not any(
                p.name == os.fsdecode(case.name) for p in hub_ws.inbox_of(case.partner).iterdir()
            ):
                wrong.append(f"{case.name!r}: a temp name was taken")
            continue
        if len(found) != 1:
            wrong.append(f"{case.name!r}: {len(found)} stored messages")
            continue
        (row,) = found
        outcome = ACCEPTED if row.state == "accepted" else row.return_status
        if outcome not in case.expect:
            wrong.append(
                f"{case.name!r}: {outcome} {row.return_info!r}, want {sorted(case.expect)}"
            )
        elif (
            case.words and outcome != ACCEPTED and case.words.lower() not in row.return_info.lower()
        ):
            wrong.append(f"{case.name!r}: reason {row.return_info!r} lacks {case.words!r}")
        if answered[row.id] < 1:
            wrong.append(f"{case.name!r}: no receipt")
    assert not wrong, "\n".join(wrong)
    assert not [
        r for r in rows if r.return_status == "-3999" or "internal error" in (r.return_info or "")
    ]
    assert delivery_states == {"delivered"}
    # Comments in signed text were dropped, not allowed to cut the signed value short.
    assert all(len(g) == 36 for g in order_guids), order_guids

    # Files: rejected in quarantine with a reason, accepted in the archive, nothing left claimed.
    quarantined = [p for p in (hub_ws.quarantine).rglob("*") if p.is_file()]
    rejected = sum(1 for r in rows if r.state == "rejected")
    assert len([p for p in quarantined if not p.name.endswith(".reason.txt")]) == rejected
    assert not [p for p in hub_ws.claims.rglob("*") if p.is_file()]
    left = [p.name for p in hub_ws.inbox.rglob("*") if p.is_file()]
    assert sorted(left) == sorted(os.fsdecode(c.name) for c in cases if IGNORED in c.expect)
    # Nothing escaped: every name the hub made is safe, nothing appeared beside the workspace.
    for folder in (hub_ws.archive, hub_ws.quarantine, hub_ws.outbox):
        unsafe = [p for p in folder.rglob("*") if not SAFE.match(p.name)]
        assert not unsafe, unsafe[:5]
    assert all_files(tmp_path) - all_files(hub_ws.root) == outside_before
    assert not list(Path("/tmp").glob("cebhub-escape*"))
    assert not list(Path("/etc").glob("cebhub-escape*"))


def test_the_same_file_twice_at_once_takes_effect_once(hub_ws, keys):
    """Two hubs over one workspace, the same bytes under two names: one effect, one duplicate."""
    from hub.generator import DEMO_PARTIES, make_purchases, order_message, to_bytes

    inbox = hub_ws.inbox_of("platform")
    purchases = make_purchases(30, seed=77)
    for i, p in enumerate(purchases):
        data = to_bytes(order_message([p], DEMO_PARTIES, sign=keys["platform"].sign))
        (inbox / f"a-{i:02d}.xml").write_bytes(data)
        (inbox / f"b-{i:02d}.xml").write_bytes(data)
    env = {k: v for k, v in os.environ.items() if k != "CEBHUB_CRASH_AT"}
    procs = [
        subprocess.Popen([CEBHUB, "-w", str(hub_ws.root), "run", "--once"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(2)
    ]  # fmt: skip
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    dispose_all()
    engine = engine_for(config.load(hub_ws), hub_ws)
    with engine.connect() as conn:
        rows = conn.execute(select(messages.c.file_name, messages.c.state)).all()
        stored = conn.execute(select(orders.c.order_no)).scalars().all()
    assert len(rows) == 60 and len({r.file_name for r in rows}) == 60
    for i in range(30):
        pair = sorted(r.state for r in rows if r.file_name in (f"a-{i:02d}.xml", f"b-{i:02d}.xml"))
        assert pair == ["accepted", "duplicate"], (i, pair)
    assert len(stored) == len(set(stored)) == 30
