"""Crash-consistency harness: SIGKILL a real `cebhub run` at random and at every crash point."""

from __future__ import annotations

import contextlib
import io
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, inspect, select

from hub import config
from hub.faults import ENV as CRASH_ENV

POINTS = (
    "after-claim",
    "after-parse",
    "in-transaction",
    "after-commit",
    "after-sync",
    "during-delivery",
    "after-delivery-write",
)
PARTNERS = ("platform", "payment", "logistics", "agent")  # the senders; customs/inspection receive
DOC_SENDER = {
    "CEB311Message": "platform",
    "CEB411Message": "payment",
    "CEB511Message": "logistics",
    "CEB621Message": "agent",
}
RECORD_TABLE = {
    "CEB311Message": "orders",
    "CEB411Message": "payments",
    "CEB511Message": "waybills",
    "CEB621Message": "lists",
}
GUARANTEE = Decimal(2000)  # small on purpose: some lists are returned for it, the rest debit it
POINT_WAIT = 10.0  # seconds a run gets to reach its crash point before it is killed anyway


@dataclass(frozen=True)
class Drop:
    """One file a partner puts in its inbox; `kind` says what must become of it."""

    partner: str
    name: str
    data: bytes
    kind: str  # "doc" (a valid declaration), "copy" (same bytes as another drop), "junk"
    msg_type: str = ""
    records: int = 0
    twin: str = ""  # for "copy": the name of the drop with the same bytes


@dataclass
class Report:
    """What a harness run did and found."""

    seed: int
    messages: int = 0
    purchases: int = 0
    lists: bool = False
    cycles: int = 0
    kills_random: int = 0
    kills_at_point: Counter = field(default_factory=Counter)
    points_not_reached: int = 0
    unexpected_exits: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def kills(self) -> int:
        return self.kills_random + sum(self.kills_at_point.values())

    @property
    def ok(self) -> bool:
        return not self.violations and not self.unexpected_exits

    def as_dict(self) -> dict:
        return {
            "seed": self.seed,
            "messages": self.messages,
            "purchases": self.purchases,
            "lists": self.lists,
            "cycles": self.cycles,
            "kills": self.kills,
            "kills_random": self.kills_random,
            "kills_at_point": dict(self.kills_at_point),
            "points_not_reached": self.points_not_reached,
            "unexpected_exits": self.unexpected_exits,
            "violations": self.violations,
            "notes": self.notes,
            "seconds": round(self.seconds, 1),
            "ok": self.ok,
        }


def cebhub_command() -> list[str]:
    """The `cebhub` of this interpreter, as a user would start it."""
    exe = Path(sys.executable).parent / "cebhub"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "hub.cli"]


# ---------------------------------------------------------------- the workspace and the stream


def make_workspace(root: Path, *, batch_size: int = 25):
    """A fresh workspace under `root` with the demo partners and their certificates.

    Returns (workspace, signers by partner id)."""
    from hub.cli import main
    from hub.cli.workspace_cmd import init_workspace
    from hub.generator import DEMO_PARTIES
    from hub.signing import (
        certificate_pem,
        new_self_signed,
        private_key_pem,
        sign_enveloped,
        write_pem,
    )
    from hub.store.db import dispose_all
    from hub.workspace import Workspace

    ws = Workspace((root / "ws").resolve())
    init_workspace(ws)
    keydir = root / "party-keys"
    keydir.mkdir(parents=True, exist_ok=True)
    p = DEMO_PARTIES
    codes = {
        "platform": f"{p.ebp_code},{p.ebc_code}",
        "payment": p.pay_code,
        "logistics": p.logistics_code,
        "agent": p.agent_code,
    }
    signers: dict[str, Callable] = {}
    for pid in PARTNERS:
        key, cert = new_self_signed(f"{pid} crash-test certificate")
        cert_path = keydir / f"{pid}.cert.pem"
        write_pem(keydir / f"{pid}.key.pem", private_key_pem(key), private=True)
        write_pem(cert_path, certificate_pem(cert))
        args = ["partner", "add", pid, "--role", pid, "--codes", codes[pid], "--cert", cert_path]
        _cli(main, ws, *args)
        signers[pid] = lambda root, key=key, cert=cert: sign_enveloped(root, key, cert)
    _cli(main, ws, "partner", "add", "customs", "--role", "customs", "--codes", "CUSTOMS")
    _cli(main, ws, "partner", "add", "inspection", "--role", "inspection", "--codes", "CIQ")
    doc = config.read_document(ws)
    doc["console"]["enabled"] = False
    doc["hub"]["batch_size"] = batch_size  # several batches per run: every point is reached often
    doc["hub"]["poll_seconds"] = 0.2
    config.write_document(ws, doc)
    if lists_supported():
        _cli(main, ws, "guarantee", "set", p.assure_code, str(GUARANTEE))
    dispose_all()
    return ws, signers


def _cli(main, ws, *args) -> None:
    with contextlib.redirect_stdout(io.StringIO()):  # the harness reports; the commands need not
        code = main(["-w", str(ws.root), *(str(a) for a in args)])
    if code != 0:
        raise RuntimeError(f"cebhub {' '.join(map(str, args))} failed with {code}")


def lists_supported() -> bool:
    from hub.handlers import HANDLERS

    return "CEB621Message" in HANDLERS


def make_stream(n: int, seed: int, signers: dict[str, Callable]) -> tuple[list[Drop], int]:
    """About `n` files: linked orders, payments, waybills (and lists), a few copies and junk.

    Returns (drops, number of purchases)."""
    from hub.generator import (
        DEMO_PARTIES,
        list_message,
        make_purchases,
        order_message,
        payment_message,
        to_bytes,
        waybill_message,
    )

    rng = random.Random(seed)
    builders = [
        ("CEB311Message", order_message),
        ("CEB411Message", payment_message),
        ("CEB511Message", waybill_message),
    ]
    if lists_supported():
        builders.append(("CEB621Message", list_message))
    extras = max(2, n // 50)  # copies and junk
    groups = max(1, (n - 2 * extras) // len(builders))
    sizes = [rng.choice((1, 1, 1, 2, 3)) for _ in range(groups)]
    purchases = make_purchases(sum(sizes), seed=seed)
    drops: list[Drop] = []
    at = 0
    for g, size in enumerate(sizes):
        group = purchases[at : at + size]
        at += size
        for msg_type, build in builders:
            partner = DOC_SENDER[msg_type]
            root = build(group, DEMO_PARTIES, rng=rng, sign=signers[partner])
            name = f"{g:06d}-{msg_type[:6]}.xml"
            drops.append(Drop(partner, name, to_bytes(root), "doc", msg_type, size))
    docs = [d for d in drops if d.kind == "doc"]
    for i in range(extras):
        twin = rng.choice(docs)
        drops.append(
            Drop(
                twin.partner,
                f"copy-{i:04d}.xml",
                twin.data,
                "copy",
                twin.msg_type,
                twin.records,
                twin.name,
            )
        )
        junk = rng.randbytes(rng.randint(1, 300))
        drops.append(Drop(rng.choice(PARTNERS), f"junk-{i:04d}.xml", b"\x00" + junk, "junk"))
    return drops, len(purchases)


def waves(drops: list[Drop], count: int, rng: random.Random) -> list[list[Drop]]:
    """The stream cut into `count` arrivals; within one arrival the order is shuffled."""
    count = max(1, min(count, len(drops)))
    step = -(-len(drops) // count)
    out = []
    for i in range(0, len(drops), step):
        wave = drops[i : i + step]
        rng.shuffle(wave)
        out.append(wave)
    return out


def drop_files(ws, wave: list[Drop]) -> None:
    """As a well-behaved partner does: a temp name, then a rename."""
    for d in wave:
        folder = ws.inbox_of(d.partner)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{d.name}.tmp"
        tmp.write_bytes(d.data)
        os.replace(tmp, folder / d.name)


# ---------------------------------------------------------------- killing


def _env(crash: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash:
        env[CRASH_ENV] = crash
    return env


def kill_plan(kills: int, rng: random.Random) -> list[str | None]:
    """Every named point first (the first time it is reached), then random times and points."""
    plan: list[str | None] = list(POINTS[: min(kills, len(POINTS))])
    while len(plan) < kills:
        if rng.random() < 0.5:
            plan.append(None)
        else:
            plan.append(f"{rng.choice(POINTS)}:{rng.randint(1, 4)}")
    return plan


def one_cycle(ws, crash: str | None, rng: random.Random, report: Report, log) -> None:
    """Start `cebhub run`, let it work, and see it die: at its crash point or by our SIGKILL."""
    proc = subprocess.Popen(
        [*cebhub_command(), "-w", str(ws.root), "run"],
        env=_env(crash),
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    try:
        if crash is None:
            time.sleep(rng.uniform(0.3, 3.0))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                report.kills_random += 1
            rc = proc.wait(timeout=30)
            if rc != -signal.SIGKILL:
                report.unexpected_exits.append(f"random-kill cycle: exit {rc}")
            return
        try:
            rc = proc.wait(timeout=POINT_WAIT)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            report.points_not_reached += 1
            report.kills_random += 1
            return
        if rc == -signal.SIGKILL:
            report.kills_at_point[crash.partition(":")[0]] += 1
        else:
            report.unexpected_exits.append(f"{crash}: exit {rc}")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)


def run_harness(
    root: Path,
    *,
    messages: int,
    kills: int,
    seed: int,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Build a workspace in `root`, feed it `messages` files over `kills` killed runs, check it."""
    started = time.monotonic()
    say = progress or (lambda _msg: None)
    rng = random.Random(seed)
    report = Report(seed=seed, lists=lists_supported())
    if not report.lists:
        report.notes.append("CEB621Message has no handler yet: no lists in the stream")
    ws, signers = make_workspace(root)
    drops, report.purchases = make_stream(messages, seed, signers)
    report.messages = len(drops)
    arrivals = waves(drops, max(1, kills), rng)  # new work before every run: points are reached
    plan = kill_plan(kills, rng)
    say(f"{len(drops)} files, {report.purchases} purchases, {kills} kills, seed {seed}")
    with open(root / "runs.log", "ab") as log:
        for i, crash in enumerate(plan):
            if i < len(arrivals):
                drop_files(ws, arrivals[i])
            one_cycle(ws, crash, rng, report, log)
            report.cycles += 1
            if (i + 1) % 25 == 0:
                say(f"cycle {i + 1}/{kills}: {report.kills} kills")
        for wave in arrivals[len(plan) :]:
            drop_files(ws, wave)
        final = subprocess.run(
            [*cebhub_command(), "-w", str(ws.root), "run", "--once"],
            env=_env(None),
            stdout=subprocess.DEVNULL,
            stderr=log,
            timeout=1800,
        )
    if final.returncode != 0:
        report.unexpected_exits.append(f"final run --once: exit {final.returncode}")
    report.violations = check(ws, drops, report)
    report.seconds = time.monotonic() - started
    return report


# ---------------------------------------------------------------- the invariants


def check(ws, drops: list[Drop], report: Report | None = None) -> list[str]:
    """Every broken invariant of design §7 as one line of text; empty when all hold."""
    from hub.store.db import dispose_all, engine_for

    bad: list[str] = []
    bad += _check_folders(ws, drops)
    dispose_all()
    engine = engine_for(config.load(ws), ws)
    try:
        with engine.connect() as conn:
            bad += _check_messages(conn, drops)
            bad += _check_receipts(conn, drops)
            bad += _check_deliveries(conn, ws)
            bad += _check_clearance(conn, ws, report)
    finally:
        dispose_all()
    return bad


def _claim_names(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return [p.name for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".reason.txt")]


def _check_folders(ws, drops: list[Drop]) -> list[str]:
    from adapters.directory import safe_name

    bad = []
    for folder in (ws.inbox, ws.claims):
        left = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
        if left:
            bad.append(f"{len(left)} files left in {folder.name}/: {[str(p) for p in left[:5]]}")
    archived = Counter(n.partition("--")[2] for n in _claim_names(ws.archive))
    quarantined = Counter(n.partition("--")[2] for n in _claim_names(ws.quarantine))
    for d in drops:
        key = safe_name(d.name)
        a, q = archived[key], quarantined[key]
        want_q = d.kind == "junk"
        if (a, q) != ((0, 1) if want_q else (1, 0)):
            bad.append(f"{d.partner}/{d.name}: {a} in archive, {q} in quarantine")
    return bad


def _check_messages(conn, drops: list[Drop]) -> list[str]:
    from hub.store.tables import messages

    bad = []
    rows = conn.execute(
        select(messages.c.partner_id, messages.c.file_name, messages.c.state, messages.c.sha256)
    ).all()
    if len(rows) != len(drops):
        bad.append(f"{len(rows)} stored messages for {len(drops)} files")
    by_name = defaultdict(list)
    for r in rows:
        by_name[(r.partner_id, r.file_name)].append(r)
    states = {}
    for d in drops:
        found = by_name.get((d.partner, d.name), [])
        if len(found) != 1:
            bad.append(f"{d.partner}/{d.name}: {len(found)} stored messages")
            continue
        states[d.name] = found[0].state
        if d.kind == "junk" and found[0].state != "rejected":
            bad.append(f"{d.name}: junk stored as {found[0].state}")
        if d.kind == "doc" and found[0].state not in ("accepted", "duplicate"):
            bad.append(f"{d.name}: stored as {found[0].state}")
    # A file and its copy: exactly one of them took effect, the other is a duplicate.
    for d in drops:
        if d.kind == "copy" and d.name in states:
            pair = sorted(
                [states[d.name], *[states.get(t.name) for t in drops if t.name == d.twin]]
            )
            copies_of_twin = sum(1 for c in drops if c.kind == "copy" and c.twin == d.twin)
            if copies_of_twin == 1 and pair != ["accepted", "duplicate"]:
                bad.append(f"{d.name} and {d.twin}: states {pair}, want accepted + duplicate")
    # Only copies may be duplicates: a re-processed file would show up here.
    copies = Counter(d.twin for d in drops if d.kind == "copy")
    dup_docs = [d.name for d in drops if d.kind == "doc" and states.get(d.name) == "duplicate"]
    for name in dup_docs:
        if not copies[name]:
            bad.append(f"{name}: stored as a duplicate but nothing else carries its bytes")
    return bad


def _check_receipts(conn, drops: list[Drop]) -> list[str]:
    from hub.store.tables import messages, receipts

    bad = []
    rows = conn.execute(
        select(
            receipts.c.message_id,
            receipts.c.msg_type,
            receipts.c.record_table,
            receipts.c.record_id,
            receipts.c.record_key,
            receipts.c.return_status,
            messages.c.file_name,
            messages.c.state,
            messages.c.msg_type.label("ori_type"),
        ).join(messages, messages.c.id == receipts.c.message_id, isouter=True)
    ).all()
    twice = Counter(
        (r.message_id, r.msg_type, r.record_table, r.record_id, r.record_key, r.return_status)
        for r in rows
    )
    for key, n in twice.items():
        if n > 1:
            bad.append(f"receipt {key} stored {n} times")
    per_file: dict[str, list] = defaultdict(list)
    for r in rows:
        per_file[r.file_name].append(r)
    for d in drops:
        got = per_file.get(d.name, [])
        if d.kind == "junk":
            if [(r.msg_type, r.return_status) for r in got] != [("CEB900Message", "-0001")]:
                bad.append(f"{d.name}: receipts {[(r.msg_type, r.return_status) for r in got]}")
            continue
        if not got:
            bad.append(f"{d.name}: no receipt")
            continue
        if got[0].state == "duplicate":
            codes = Counter(r.return_status for r in got)
            if sum(codes.values()) != d.records or len(codes) != 1:
                bad.append(f"{d.name}: duplicate answered with {dict(codes)}")
            continue
        codes = Counter(r.return_status for r in got)
        if d.msg_type in ("CEB311Message", "CEB411Message", "CEB511Message"):
            if codes != Counter({"2": d.records, "120": d.records}):
                bad.append(f"{d.name}: receipts {dict(codes)}, want 2 and 120 per record")
        elif codes["2"] != d.records:
            bad.append(f"{d.name}: {codes['2']} receipts 2 for {d.records} lists")
    return bad


def _check_deliveries(conn, ws) -> list[str]:
    from hub.delivery.outbox import select_with_body
    from hub.store.tables import deliveries, receipts

    bad = []
    rows = conn.execute(
        select_with_body(deliveries.c.partner_id, deliveries.c.file_name, deliveries.c.state)
    ).all()
    states = Counter(r.state for r in rows)
    if set(states) - {"delivered"}:
        bad.append(f"deliveries not all delivered: {dict(states)}")
    wanted: dict[tuple[str, str], bytes] = {}
    for r in rows:
        wanted[(r.partner_id, r.file_name)] = bytes(r.body)
    present: dict[tuple[str, str], Path] = {}
    temp = []
    for pdir in sorted(p for p in ws.outbox.iterdir() if p.is_dir()):
        for path in pdir.iterdir():
            if path.name.startswith(".") or path.name.endswith(".tmp"):
                temp.append(path.name)
            elif path.is_file():
                present[(pdir.name, path.name)] = path
    if temp:
        bad.append(f"{len(temp)} temp files left in outbox: {temp[:5]}")
    for key in wanted.keys() - present.keys():
        bad.append(f"delivery {key[0]}/{key[1]} missing from the outbox")
    for key in present.keys() - wanted.keys():
        bad.append(f"outbox file {key[0]}/{key[1]} has no delivery row")
    for key in wanted.keys() & present.keys():
        if present[key].read_bytes() != wanted[key]:
            bad.append(f"outbox file {key[0]}/{key[1]} differs from its delivery")
    # Every receipt went to the partner it answers.
    guids = set(conn.execute(select(deliveries.c.guid)).scalars())
    unsent = conn.execute(
        select(func.count(func.distinct(receipts.c.guid))).where(receipts.c.guid.not_in(guids))
    ).scalar()
    if unsent:
        bad.append(f"{unsent} receipts without a delivery")
    return bad


def _check_clearance(conn, ws, report: Report | None) -> list[str]:
    if not inspect(conn).has_table("lists") or not inspect(conn).has_table("guarantees"):
        if report is not None:
            report.notes.append("no clearance tables: guarantee and year totals not checked")
        return []
    from hub.clearance.quota import year_total
    from hub.clearance.states import COUNTED
    from hub.clearance.tables import guarantee_ledger, guarantees, list_log, lists
    from hub.store.tables import receipts

    bad = []
    counted = {s.value for s in COUNTED}
    rows = conn.execute(select(lists)).all()
    held: dict[str, Decimal] = defaultdict(Decimal)
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for r in rows:
        if r.state in counted:
            held[r.assure_code or ""] += (r.tax or 0) - (r.refunded_tax or 0)
            totals[(r.buyer_id_number, r.year)] += (r.dutiable_value or 0) - (r.refunded_value or 0)
    for g in conn.execute(select(guarantees)).all():
        set_to = conn.execute(
            select(func.coalesce(func.sum(guarantee_ledger.c.amount), 0)).where(
                guarantee_ledger.c.assure_code == g.assure_code, guarantee_ledger.c.kind == "set"
            )
        ).scalar()
        expect = Decimal(str(set_to)) - held[g.assure_code]
        if Decimal(str(g.balance)) != expect:
            bad.append(
                f"guarantee {g.assure_code}: balance {g.balance}, lists recomputed give {expect}"
            )
    settings = config.load(ws)
    for (buyer, year), total in totals.items():
        stored = year_total(conn, buyer, year)
        if stored != total:
            bad.append(f"buyer {buyer} {year}: year total {stored}, lists recomputed give {total}")
        if total > settings.clearance.annual_limit:
            bad.append(f"buyer {buyer} {year}: year total {total} over the annual limit")
    # Each list's log and its receipts tell the same story: one CEB622 per announced step.
    logged = Counter(
        (r.list_id, r.code)
        for r in conn.execute(select(list_log.c.list_id, list_log.c.code)).all()
        if r.code
    )
    sent = Counter(
        (r.record_id, r.return_status)
        for r in conn.execute(
            select(receipts.c.record_id, receipts.c.return_status).where(
                receipts.c.record_table == "lists"
            )
        ).all()
    )
    for key in logged.keys() | sent.keys():
        if logged[key] != sent[key]:
            bad.append(f"list {key[0]} status {key[1]}: logged {logged[key]}, receipts {sent[key]}")
    if report is not None:
        report.notes.append(
            "list states: "
            + ", ".join(f"{s} {n}" for s, n in sorted(Counter(r.state for r in rows).items()))
        )
    return bad
