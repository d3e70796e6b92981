"""Test helpers: a workspace with partners, signing keys, and reading what the hub wrote."""

from __future__ import annotations

import base64
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lxml import etree
from sqlalchemy import Engine, MetaData, create_engine, event, func, insert, select
from sqlalchemy.pool import Pool

from hub import config
from hub.cli import main
from hub.clock import utcnow
from hub.constants import CEB_NS, DXP_NS
from hub.signing import sign_enveloped
from hub.store.db import dispose_all, engine_for
from hub.store.states import MessageState
from hub.store.tables import messages, orders, receipts
from hub.workspace import Workspace


def _find_shared() -> Path:
    """The project's shared/ folder (the spec, the official samples the tests read).

    `$CEBHUB_SHARED` if set; else beside this checkout, as CI lays it out; else beside the
    repository this checkout was cloned from (a clone made anywhere for a clean test run).
    """
    repo = Path(__file__).resolve().parents[1]
    found = [Path(os.environ["CEBHUB_SHARED"])] if os.environ.get("CEBHUB_SHARED") else []
    found.append(repo.parent / "shared")
    origin = subprocess.run(
        ["git", "-C", str(repo), "config", "--get", "remote.origin.url"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    if origin and Path(origin).is_absolute():  # a local clone's origin is a path
        found.append(Path(origin).resolve().parent / "shared")
    for folder in found:
        if (folder / "samples" / "official").is_dir():
            return folder
    raise RuntimeError(
        f"shared/ (spec and official samples) not found at {', '.join(map(str, found))}; "
        "set CEBHUB_SHARED to its path"
    )


SHARED = _find_shared()
SAMPLES = SHARED / "samples" / "official"


@dataclass(frozen=True)
class PartyKey:
    """A partner's signing key and certificate, as files and objects."""

    key: object
    cert: object
    key_path: Path
    cert_path: Path

    def sign(self, root: etree._Element) -> etree._Element:
        return sign_enveloped(root, self.key, self.cert)


def cli(ws: Workspace, *args: object) -> int:
    """Run `cebhub -w WS ARGS…` in this process."""
    return main(["-w", str(ws.root), *(str(a) for a in args)])


def files(folder: Path, pattern: str = "*.xml") -> list[Path]:
    return sorted(p for p in folder.glob(pattern) if p.is_file()) if folder.is_dir() else []


def unwrap(data: bytes) -> etree._Element:
    """The CEB root of a file the hub wrote (inside a DxpMsg or bare)."""
    root = etree.fromstring(data)
    if root.tag == f"{{{DXP_NS}}}DxpMsg":
        payload = base64.b64decode(root.findtext(f"{{{DXP_NS}}}Data"))
        root = etree.fromstring(payload)
    return root


@dataclass
class Entry:
    """One `…Return` entity of a receipt."""

    msg_type: str
    fields: dict[str, str]

    @property
    def status(self) -> str:
        return self.fields["returnStatus"]

    @property
    def info(self) -> str:
        return self.fields.get("returnInfo", "")


def receipt_entries(folder: Path, msg_type: str | None = None) -> list[Entry]:
    """Every receipt entry in a partner's outbox, oldest file first."""
    out = []
    for path in sorted(files(folder), key=lambda p: (p.stat().st_mtime_ns, p.name)):
        root = unwrap(path.read_bytes())
        name = etree.QName(root).localname
        if msg_type and name != msg_type:
            continue
        for ent in root:
            fields = {etree.QName(c).localname: c.text or "" for c in ent}
            out.append(Entry(name, fields))
    return out


def statuses(folder: Path, msg_type: str | None = None) -> list[str]:
    return [e.status for e in receipt_entries(folder, msg_type)]


def ceb_text(root: etree._Element, path: str) -> str | None:
    return root.findtext(path, namespaces={"ceb": CEB_NS})


def counts(ws: Workspace) -> dict[str, int]:
    """Stored messages (all, accepted), orders and receipt entries of a workspace."""
    engine = engine_for(config.load(ws), ws)
    with engine.connect() as conn:
        return {
            "messages": conn.execute(select(func.count()).select_from(messages)).scalar(),
            "accepted": conn.execute(
                select(func.count()).where(messages.c.state == MessageState.ACCEPTED)
            ).scalar(),
            "orders": conn.execute(select(func.count()).select_from(orders)).scalar(),
            "receipts": conn.execute(select(func.count()).select_from(receipts)).scalar(),
        }


def status_json(ws: Workspace) -> dict:
    """`cebhub status --json` of a workspace, run as its own process."""
    cebhub = str(Path(sys.executable).parent / "cebhub")
    out = subprocess.run(
        [cebhub, "-w", str(ws.root), "status", "--json"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@contextmanager
def scratch_engine(kind: str, tmp_path: Path, meta: MetaData) -> Iterator[Engine]:
    """An engine on a new SQLite file or a new PostgreSQL schema, with `meta`'s tables."""
    from tests.test_store_backends import drop_schema, pg_schema

    schema = None
    if kind == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'scratch.db'}")
    else:
        schema, url = pg_schema()
        engine = create_engine(url)
    meta.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        if schema is not None:
            drop_schema(schema)


_message_claims = itertools.count()


def insert_message(conn, **values) -> int:
    """An accepted message row (an order unless told otherwise); returns its id."""
    when = values.pop("at", None) or utcnow()
    body = values.get("body", b"<x/>")
    row = dict(
        partner_id="platform", claim=f"claim-{next(_message_claims)}", file_name="m.xml",
        sha256="0" * 64, size=len(body or b""), msg_type="CEB311Message", state="accepted",
        received_at=when, processed_at=when, body=body,
    )  # fmt: skip
    return conn.execute(insert(messages).returning(messages.c.id), {**row, **values}).scalar_one()


def drop_orders(ws: Workspace, keys, n: int, seed: int = 1) -> list[str]:
    """`n` signed orders, one purchase each, in the platform's inbox; returns their file names."""
    from hub.generator import DEMO_PARTIES, make_purchases, order_message, to_bytes

    names = []
    for i, p in enumerate(make_purchases(n, seed=seed)):
        data = to_bytes(order_message([p], DEMO_PARTIES, sign=keys["platform"].sign))
        names.append(f"order-{seed}-{i}.xml")
        (ws.inbox_of("platform") / names[-1]).write_bytes(data)
    return names


@contextmanager
def in_service(hub, join_seconds: float = 60.0) -> Iterator[None]:
    """`hub.run_forever` in a thread, as `cebhub run` runs it; stopped on the way out."""
    stop = threading.Event()
    service = threading.Thread(target=hub.run_forever, args=(stop,))
    service.start()
    try:
        yield
    finally:
        stop.set()
        hub.wakeup.set()
        service.join(join_seconds)


def wait_until(condition, what: str, seconds: float = 60.0) -> None:
    """Poll `condition` until it holds; fail with `what` (what never happened) after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@contextmanager
def traced_sql(statements: list[str]) -> Iterator[None]:
    """Every SQL statement SQLite runs meanwhile, on connections made meanwhile, appended to
    `statements` (connections made before are dropped first, and those made here after)."""

    def on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.set_trace_callback(statements.append)

    dispose_all()
    event.listen(Pool, "connect", on_connect)
    try:
        yield
    finally:
        event.remove(Pool, "connect", on_connect)
        dispose_all()
