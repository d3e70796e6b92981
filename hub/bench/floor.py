"""The cost floor: parse, verify, validate, store and sign each message with no hub around it."""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table, insert

from hub import schemas, xmlsafe
from hub.clock import utcnow
from hub.config import Settings
from hub.messages.receipts import ReceiptEntry, build_receipt
from hub.messages.types import by_root
from hub.signing import TrustedCert, load_trusted, sign_enveloped, verify_enveloped
from hub.signing.hubkeys import load_hub_key
from hub.store.db import make_engine
from hub.workspace import Workspace

STORE_BATCH = 100  # records per transaction, as the hub's group commit
STAGES = ("parse", "verify", "validate", "store", "sign")

_scratch = MetaData()
scratch_records = Table(
    "records",
    _scratch,
    Column("id", Integer, primary_key=True),
    Column("msg_type", String(32), nullable=False),
    Column("guid", String(64), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("body", LargeBinary, nullable=False),
)


@dataclass
class Floor:
    """Seconds spent in each stage over `messages` messages."""

    messages: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    @property
    def per_second(self) -> float:
        return self.messages / self.total if self.total else 0.0

    def micros(self) -> dict[str, float]:
        n = max(1, self.messages)
        return {k: round(v / n * 1e6, 1) for k, v in self.seconds.items()}


def _trusted(ws: Workspace, settings: Settings) -> dict[str, list[TrustedCert]]:
    return {
        p.id: [c for path in p.certificates for c in load_trusted(ws.resolve(path), label=p.id)]
        for p in settings.partners.values()
    }


def _receipt_template(msg_type: str):
    """A receipt of one entry for `msg_type`, as the hub would answer a one-record message."""
    from lxml import etree

    mt = by_root(msg_type)
    keys = {name: "X" * 20 for name in mt.receipt_keys}
    entry = ReceiptEntry("2", "新增申报成功", keys, guid="0" * 36)
    return etree.fromstring(build_receipt(mt, [entry]).body)


def measure_floor(
    ws: Workspace, settings: Settings, files: Sequence[tuple[str, Path]], scratch_db: Path
) -> Floor:
    """Run the five stages over (partner id, file) pairs; only the stages are timed."""
    trusted = _trusted(ws, settings)
    hub_key, hub_cert = load_hub_key(ws)
    engine = make_engine(f"sqlite:///{scratch_db}")  # WAL, synchronous=FULL: durable like the hub
    _scratch.create_all(engine)
    templates: dict[str, object] = {}
    floor = Floor()
    spent = floor.seconds
    at = utcnow()
    limit, depth = settings.hub.max_message_bytes, settings.hub.max_depth
    clock = time.perf_counter
    pending: list[dict] = []
    for partner_id, path in files:
        data = path.read_bytes()
        t0 = clock()
        root = xmlsafe.parse(data, max_bytes=limit, max_depth=depth)
        t1 = clock()
        verify_enveloped(root, trusted[partner_id], at=at)
        t2 = clock()
        schemas.validate(root)
        t3 = clock()
        msg_type = root.tag.rpartition("}")[2]
        pending.append(
            dict(
                msg_type=msg_type,
                guid=root.get("guid"),
                sha256=hashlib.sha256(data).hexdigest(),
                body=data,
            )
        )
        if len(pending) == STORE_BATCH:
            with engine.begin() as conn:
                conn.execute(insert(scratch_records), pending)
            pending = []
        t4 = clock()
        if msg_type not in templates:
            templates[msg_type] = _receipt_template(msg_type)
        receipt = copy.deepcopy(templates[msg_type])
        t5 = clock()
        sign_enveloped(receipt, hub_key, hub_cert)
        t6 = clock()
        spent["parse"] += t1 - t0
        spent["verify"] += t2 - t1
        spent["validate"] += t3 - t2
        spent["store"] += t4 - t3
        spent["sign"] += t6 - t5
        floor.messages += 1
    if pending:
        t0 = clock()
        with engine.begin() as conn:
            conn.execute(insert(scratch_records), pending)
        spent["store"] += clock() - t0
    engine.dispose()
    return floor
