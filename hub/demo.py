"""A day of signed demo traffic: partners, guarantee, identities, users, and what review makes of it."""

from __future__ import annotations

import contextlib
import io
import random
import secrets
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from lxml import etree

from hub import config
from hub.clock import CST, utcnow
from hub.generator import (
    DEMO_PARTIES,
    Purchase,
    batches,
    list_message,
    make_person,
    make_purchase,
    order_message,
    payment_message,
    to_bytes,
    waybill_message,
    waybill_status_message,
)
from hub.signing import (
    certificate_pem,
    fingerprint,
    load_certificate,
    load_certificates,
    load_private_key,
    new_self_signed,
    private_key_pem,
    sign_enveloped,
    write_pem,
)
from hub.workspace import Workspace

P = DEMO_PARTIES
SENDERS = {  # partner id → role and the codes it acts as
    "platform": ("platform", f"{P.ebp_code},{P.ebc_code}"),
    "payment": ("payment", P.pay_code),
    "logistics": ("logistics", P.logistics_code),
    "agent": ("agent", P.agent_code),
}
ENDPOINTS = {"customs": ("customs", "CUSTOMS"), "inspection": ("inspection", "CIQ")}
GUARANTEE = Decimal(1_000_000)
UNLODGED_ASSURE = "4401969999"  # an assureCode with no guarantee: reason R5
RISK_VALUE_ABOVE = Decimal(3500)  # clean purchases stay under it, "manual" ones go over
RECORDS_PER_MESSAGE = 8
FILES_PER_ROUND = 30  # files dropped before each processing round (one progress step)
DEMO_USERS = ("operator", "customs", "inspection", "ops", "admin")


@dataclass
class Case:
    """A purchase and what the demo means it to become."""

    purchase: Purchase
    kind: str  # clean, R1…R5, L1, L2, manual, temporary, verified, waiting
    documents: tuple[str, ...] = ("order", "payment", "waybill")


@dataclass
class DemoReport:
    seed: int
    purchases: int = 0
    files: int = 0
    kinds: Counter = field(default_factory=Counter)
    partners_added: list[str] = field(default_factory=list)
    users_added: list[str] = field(default_factory=list)
    password: str | None = None
    lists_by_state: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------- partners, money, people


def _cli(ws: Workspace, *args: object) -> None:
    from hub.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["-w", str(ws.root), *(str(a) for a in args)])
    if code != 0:
        raise RuntimeError(f"cebhub {' '.join(map(str, args))} failed ({code})")


def demo_key(ws: Workspace, partner_id: str) -> tuple[Path, Path]:
    """keys/demo/<id>.key.pem and .cert.pem, made once."""
    folder = ws.keys / "demo"
    key_path, cert_path = folder / f"{partner_id}.key.pem", folder / f"{partner_id}.cert.pem"
    if not (key_path.is_file() and cert_path.is_file()):
        folder.mkdir(parents=True, exist_ok=True)
        key, cert = new_self_signed(f"{partner_id} demo certificate")
        write_pem(key_path, private_key_pem(key), private=True)
        write_pem(cert_path, certificate_pem(cert))
    return key_path, cert_path


def _trusts(ws: Workspace, certificates: list[str], cert_path: Path) -> bool:
    want = fingerprint(load_certificate(cert_path))
    for name in certificates:
        path = ws.resolve(name)
        if path.is_file() and any(fingerprint(c) == want for c in load_certificates(path)):
            return True
    return False


def ensure_partners(ws: Workspace) -> tuple[dict[str, Callable], list[str]]:
    """The demo senders (with their keys) and endpoints; partners that exist are kept."""
    existing = config.load(ws).partners
    added, signers = [], {}
    for pid, (role, codes) in SENDERS.items():
        key_path, cert_path = demo_key(ws, pid)
        if pid not in existing:
            _cli(ws, "partner", "add", pid, "--role", role, "--codes", codes, "--cert", cert_path)
            added.append(pid)
        elif not _trusts(ws, existing[pid].certificates, cert_path):
            _cli(ws, "partner", "cert", "add", pid, cert_path)  # so the demo's signatures verify
        key, cert = load_private_key(key_path), load_certificate(cert_path)
        signers[pid] = lambda root, key=key, cert=cert: sign_enveloped(root, key, cert)
    for pid, (role, codes) in ENDPOINTS.items():
        if pid not in existing:
            _cli(ws, "partner", "add", pid, "--role", role, "--codes", codes)
            added.append(pid)
    return signers, added


def ensure_risk_rule(ws: Workspace) -> None:
    """[clearance.risk] value_above, unless a risk rule is configured already."""
    doc = config.read_document(ws)
    clearance = doc.setdefault("clearance", {})
    risk = clearance.setdefault("risk", {})
    if not any(k in risk for k in ("value_above", "hs_prefixes", "sampling_rate")):
        risk["value_above"] = str(RISK_VALUE_ABOVE)
        config.write_document(ws, doc)


def ensure_guarantee(engine) -> None:
    from hub.clearance import guarantee

    with engine.begin() as conn:
        have = guarantee.balance(conn, P.assure_code)
        if have is None or have < GUARANTEE / 10:
            guarantee.set_balance(conn, P.assure_code, GUARANTEE, utcnow())


def import_identities(ws: Workspace, engine, cases: Sequence[Case]) -> int:
    """A small real-name registry: the verified buyers, plus some clean ones for colour."""
    from hub.clearance import identity

    people = [c.purchase.buyer for c in cases if c.kind == "verified"]
    people += [c.purchase.buyer for c in cases if c.kind == "clean"][:10]
    path = ws.keys / "demo" / "identities.csv"
    lines = ["id-number,name", *(f"{p.id_number},{p.name}" for p in people)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with engine.begin() as conn:
        return identity.import_csv(conn, path, utcnow())


def ensure_users(engine, password: str | None) -> tuple[list[str], str | None]:
    """operator / customs / inspection / ops / admin, one password; None if none was added."""
    try:
        from hub.console.auth import UserError, add_user, list_users
    except ImportError:  # a build without the console
        return [], None
    have = {u["name"] for u in list_users(engine)}
    password = password or secrets.token_urlsafe(9)
    codes = [P.ebp_code, P.ebc_code, P.pay_code, P.logistics_code, P.agent_code]
    added = []
    for name in DEMO_USERS:
        if name in have:
            continue
        try:
            add_user(engine, name, name, codes if name == "operator" else [], password)
            added.append(name)
        except UserError:
            continue
    return added, (password if added else None)


# ---------------------------------------------------------------- the day's purchases


def _share(n: int, rate: float, least: int) -> int:
    return max(least, round(n * rate))


def plan(n: int, seed: int, today: datetime | None = None) -> list[Case]:
    """About `n` purchases placed over today: most clean, a few of every failure and state."""
    rng = random.Random(seed)
    start = (today or datetime.now(CST)).replace(hour=0, minute=0, second=0, microsecond=0)
    span = max(60, int((datetime.now(CST) - start).total_seconds()))

    def buy(**kw) -> Purchase:
        placed = start + timedelta(seconds=rng.randrange(span))
        return make_purchase(rng, P, placed_at=placed, **kw)

    cases: list[Case] = []
    add = cases.append
    for _ in range(_share(n, 0.02, 1)):
        add(Case(buy().override("LogisticsHead", consigneeTelephone="13900000000"), "R1"))
    for _ in range(_share(n, 0.02, 1)):
        add(Case(buy().override("PaymentHead", amountPaid="1.00"), "R2"))
    for _ in range(_share(n, 0.02, 1)):
        add(Case(replace(buy(), payer=make_person(rng)), "R3"))
    for _ in range(_share(n, 0.02, 1)):
        add(Case(buy().override("InventoryHead", country="116"), "R4"))
    for _ in range(_share(n, 0.02, 1)):
        add(Case(buy().override("InventoryHead", assureCode=UNLODGED_ASSURE), "R5"))
    for _ in range(_share(n, 0.01, 1)):
        add(Case(buy(total_min=Decimal(5001), total_max=Decimal(5200)), "L1"))
    # One buyer's eight purchases of ~3,350 CNY: the eighth goes over the 26,000 annual limit.
    buyer = make_person(rng)
    for _ in range(8):
        p = buy(total_min=Decimal(3300), total_max=Decimal(3400))
        add(Case(replace(p, buyer=buyer, payer=buyer), "L2"))
    for _ in range(_share(n, 0.06, 5)):
        add(Case(buy(total_min=Decimal(3700), total_max=Decimal(4200)), "manual"))
    for _ in range(_share(n, 0.03, 2)):
        add(Case(buy(), "temporary"))
    for _ in range(_share(n, 0.02, 1)):
        add(Case(replace(buy(), payer=make_person(rng)), "verified"))
    for _ in range(_share(n, 0.01, 1)):
        add(Case(buy(), "waiting", documents=("order", "payment")))
    while len(cases) < n:
        add(Case(buy(), "clean"))
    rng.shuffle(cases)
    # The annual-limit purchases stay together and in order, so the eighth is the one over.
    l2 = [c for c in cases if c.kind == "L2"]
    rest = [c for c in cases if c.kind != "L2"]
    return rest[: len(rest) // 2] + l2 + rest[len(rest) // 2 :]


@dataclass(frozen=True)
class Drop:
    partner: str
    name: str
    data: bytes


def _messages(
    cases: Sequence[Case], signers: dict[str, Callable], rng: random.Random
) -> tuple[list[Drop], list[Drop]]:
    """(documents, lists) as signed files, a few records per message."""
    docs: list[Drop] = []
    serial = iter(range(1, 10**6))

    def drop(out: list[Drop], partner: str, root: etree._Element) -> None:
        name = f"{etree.QName(root).localname}_{next(serial):05d}.xml"
        out.append(Drop(partner, name, to_bytes(root)))

    builders = (
        ("order", "platform", order_message),
        ("payment", "payment", payment_message),
        ("waybill", "logistics", waybill_message),
    )
    for doc, partner, build in builders:
        wanted = [c.purchase for c in cases if doc in c.documents]
        for group in batches(wanted, RECORDS_PER_MESSAGE):
            drop(docs, partner, build(group, P, rng=rng, sign=signers[partner]))
    lists: list[Drop] = []
    # Some parcels are signed for: sent with the lists, once their waybills are in.
    signed_for = [c.purchase for c in cases if c.kind == "clean"][::7]
    for group in batches(signed_for, RECORDS_PER_MESSAGE):
        root = waybill_status_message(group, P, rng=rng, sign=signers["logistics"])
        drop(lists, "logistics", root)
    declared = [c.purchase for c in cases if c.kind not in ("temporary", "L2")]
    l2 = [c.purchase for c in cases if c.kind == "L2"]
    saved = [c.purchase for c in cases if c.kind == "temporary"]
    for group in batches(declared, RECORDS_PER_MESSAGE):
        drop(lists, "agent", list_message(group, P, rng=rng, sign=signers["agent"]))
    drop(lists, "agent", list_message(l2, P, rng=rng, sign=signers["agent"]))
    for group in batches(saved, RECORDS_PER_MESSAGE):
        root = list_message(group, P, app_status="1", rng=rng, sign=signers["agent"])
        drop(lists, "agent", root)
    # Two files that end in quarantine: an unsigned order and something that is not XML.
    unsigned = order_message([cases[0].purchase], P, rng=rng)
    lists.append(Drop("platform", "unsigned-order.xml", to_bytes(unsigned)))
    lists.append(Drop("payment", "not-xml.xml", b"%PDF-1.4 this is not a CEB message\n"))
    return docs, lists


# ---------------------------------------------------------------- dropping and processing


def _put(ws: Workspace, d: Drop) -> None:
    """Into the partner's inbox the way a partner should: temp name, then rename."""
    folder = ws.inbox_of(d.partner)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / d.name
    n = 1
    while target.exists():
        target = folder / f"{Path(d.name).stem}.{n}.xml"
        n += 1
    tmp = folder / f".{target.name}.tmp"
    tmp.write_bytes(d.data)
    tmp.replace(target)


def _rounds(drops: Sequence[Drop]) -> Iterator[list[Drop]]:
    for start in range(0, len(drops), FILES_PER_ROUND):
        yield list(drops[start : start + FILES_PER_ROUND])


def _decide_some(ws: Workspace, settings, engine) -> Counter:
    """Officers act on a few lists in manual review: release one, inspect one, return one."""
    from sqlalchemy import select

    from hub.clearance.lifecycle import Desk, get
    from hub.clearance.manual import decide
    from hub.clearance.states import Authority, Decision, ListState
    from hub.clearance.tables import lists
    from hub.routing import Router
    from hub.runner import envelope_signer

    router = Router(settings, sign_envelope=envelope_signer(ws), root=ws.root)
    done: Counter = Counter()
    with engine.connect() as conn:
        ids = list(
            conn.execute(
                select(lists.c.id)
                .where(lists.c.state == ListState.MANUAL_REVIEW)
                .order_by(lists.c.id)
            ).scalars()
        )
    plans = [
        [(Decision.PASS, ""), (Decision.RELEASE, "")],  # passed, released, closed
        [(Decision.INSPECT, "")],  # physical inspection
        [(Decision.RETURN, "申报品名与实物不符 goods name does not match the goods")],
    ]
    for list_id, steps in zip(ids, plans, strict=False):
        with engine.begin() as conn:
            desk = Desk(conn, router, utcnow(), actor="demo officer", root=ws.root)
            row = get(conn, list_id)
            for decision, reason in steps:
                authorities = [Authority(a) for a in (row.routed_to or ["customs"])]
                if decision in (Decision.INSPECT, Decision.RETURN):
                    authorities = authorities[:1]
                for authority in authorities:
                    row = decide(desk, row, authority, decision, reason)
            done[row.state] += 1
    return done


def run_demo(
    ws: Workspace,
    purchases: int = 200,
    seed: int | None = None,
    *,
    password: str | None = None,
    progress: bool = True,
) -> DemoReport:
    """Register the demo partners and users, then produce and process a day of traffic."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from hub.runner import Hub
    from hub.store.db import engine_for

    seed = secrets.randbelow(10**6) if seed is None else seed
    report = DemoReport(seed)
    signers, report.partners_added = ensure_partners(ws)
    ensure_risk_rule(ws)
    settings = config.load(ws)
    engine = engine_for(settings, ws)
    ensure_guarantee(engine)
    report.users_added, report.password = ensure_users(engine, password)

    cases = plan(purchases, seed)
    import_identities(ws, engine, cases)
    docs, lists = _messages(cases, signers, random.Random(seed + 1))
    report.purchases = len(cases)
    report.kinds = Counter(c.kind for c in cases)
    report.files = len(docs) + len(lists)

    columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, disable=not progress, transient=False) as bars:
        for title, drops in (("orders, payments, waybills", docs), ("declaration lists", lists)):
            task = bars.add_task(title, total=len(drops))
            for group in _rounds(drops):
                for d in group:
                    _put(ws, d)
                Hub(ws, settings).run_once()
                bars.advance(task, len(group))
        task = bars.add_task("officers' decisions", total=1)
        _decide_some(ws, settings, engine)
        Hub(ws, settings).run_once()  # deliver the decisions' receipts
        bars.advance(task)
    report.lists_by_state = lists_by_state(engine)
    return report


def lists_by_state(engine) -> dict[str, int]:
    from sqlalchemy import func, select

    from hub.clearance.tables import lists

    with engine.connect() as conn:
        rows = conn.execute(select(lists.c.state, func.count()).group_by(lists.c.state)).all()
    return dict(sorted((str(s), n) for s, n in rows))
