"""The benchmark's input: a workspace with partners, and signed linked messages dropped into it."""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

from hub.cli.workspace_cmd import init_workspace
from hub.generator import (
    DEMO_PARTIES,
    list_message,
    make_purchase,
    order_message,
    payment_message,
    to_bytes,
    waybill_message,
)
from hub.handlers import HANDLERS
from hub.signing import (
    certificate_pem,
    load_certificate,
    load_private_key,
    new_self_signed,
    private_key_pem,
    sign_enveloped,
    write_pem,
)
from hub.workspace import Workspace

MAX_LINES = 10  # goods lines per purchase, drawn uniformly from 1..MAX_LINES

# Message type -> (partner who sends it, builder); a quarter of the input each.
MIX = {
    "CEB311Message": ("platform", order_message),
    "CEB411Message": ("payment", payment_message),
    "CEB511Message": ("logistics", waybill_message),
    "CEB621Message": ("agent", list_message),
}
SENDERS = ("platform", "payment", "logistics", "agent")
RECEIVERS = (("customs", "customs", "CUSTOMS"), ("inspection", "inspection", "CIQ"))


@dataclass(frozen=True)
class Dropped:
    """One input file in a partner's inbox, and when it landed there."""

    partner_id: str
    file_name: str
    msg_type: str
    dropped_at: float  # file mtime, seconds since the epoch


def message_mix() -> tuple[list[str], list[str]]:
    """(types the pipeline handles and the bench sends, types left out because it does not)."""
    used = [t for t in MIX if t in HANDLERS]
    return used, [t for t in MIX if t not in HANDLERS]


BENCH_GUARANTEE = "1000000000"  # yuan: far more than any run's lists debit


def _partner_codes() -> dict[str, str]:
    p = DEMO_PARTIES
    return {
        "platform": f"{p.ebp_code},{p.ebc_code}",
        "payment": p.pay_code,
        "logistics": p.logistics_code,
        "agent": p.agent_code,
    }


def prepare_workspace(
    root: Path,
    database_url: str | None = None,
    batch_size: int | None = None,
    check_processes: int | None = None,
    write_process: bool | None = None,
) -> Workspace:
    """A fresh workspace with the four senders (new certificates), customs and inspection."""
    from hub import config
    from hub.cli import main

    ws = Workspace(root)
    init_workspace(ws)
    hub = {"database_url": database_url, "batch_size": batch_size}
    hub.update(check_processes=check_processes, write_process=write_process)
    if any(v is not None for v in hub.values()):
        doc = config.read_document(ws)
        for key, value in hub.items():
            if value is not None:
                doc["hub"][key] = value
        config.write_document(ws, doc)
    keys = root / "bench-keys"  # the partners' private keys, outside the hub's own keys/
    keys.mkdir(exist_ok=True)
    quiet = contextlib.redirect_stdout(io.StringIO())
    for pid, codes in _partner_codes().items():
        key, cert = new_self_signed(f"{pid} bench certificate")
        write_pem(keys / f"{pid}.key.pem", private_key_pem(key), private=True)
        write_pem(keys / f"{pid}.cert.pem", certificate_pem(cert))
        with quiet:
            args = ["partner", "add", pid, "--role", pid, "--codes", codes]
            main(["-w", str(root), *args, "--cert", str(keys / f"{pid}.cert.pem")])
    for pid, role, codes in RECEIVERS:
        with quiet:
            main(["-w", str(root), "partner", "add", pid, "--role", role, "--codes", codes])
    if database_url:  # the engine above was made on SQLite before the URL was set
        from hub.store.db import engine_for

        engine_for(config.load(ws), ws)
    with quiet:  # lodged, so lists pass electronic review as most do, rather than R5 each
        main(["-w", str(root), "guarantee", "set", DEMO_PARTIES.assure_code, BENCH_GUARANTEE])
    return ws


# ---------------------------------------------------------------- generation (in worker processes)


def _signers(root: Path) -> dict[str, object]:
    keys = root / "bench-keys"
    signers = {}
    for pid in SENDERS:
        key = load_private_key((keys / f"{pid}.key.pem").read_bytes())
        cert = load_certificate((keys / f"{pid}.cert.pem").read_bytes())
        signers[pid] = lambda el, key=key, cert=cert: sign_enveloped(el, key, cert)
    return signers


def _drop(folder: Path, name: str, data: bytes) -> float:
    # Temp name then rename, as partners must; no fsync: the drop is not what is measured.
    tmp = folder / f".{name}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, folder / name)
    return os.stat(folder / name).st_mtime


def _generate_chunk(job: tuple[str, int, int, int, tuple[str, ...], str]) -> list[Dropped]:
    """Messages start..stop of the run: purchase i // k carries message type i % k."""
    root_text, seed, start, stop, types, into = job
    root = Path(root_text)
    signers = _signers(root)
    k = len(types)
    out = []
    first, last = start // k, (stop - 1) // k
    for index in range(first, last + 1):
        rng = random.Random(seed * 1_000_003 + index)  # the same purchase whichever chunk
        purchase = make_purchase(rng, DEMO_PARTIES, lines=rng.randint(1, MAX_LINES))
        for j, msg_type in enumerate(types):
            n = index * k + j
            if not start <= n < stop:
                continue
            partner_id, build = MIX[msg_type]
            message = build([purchase], DEMO_PARTIES, rng=rng, sign=signers[partner_id])
            name = f"{msg_type}_{message.get('guid')}.xml"
            folder = root / into / partner_id
            out.append(Dropped(partner_id, name, msg_type, _drop(folder, name, to_bytes(message))))
    return out


def generate(
    ws: Workspace, n: int, types: list[str], seed: int = 1, into: str = "inbox"
) -> list[Dropped]:
    """Generate, sign and drop `n` messages, spread over the machine's cores.

    `into` is the folder under the workspace root that gets a folder per partner: the inbox,
    or a staging folder the paced drop (`drop_paced`) takes them from.
    """
    if into != "inbox":
        for partner_id in SENDERS:
            (ws.root / into / partner_id).mkdir(parents=True, exist_ok=True)
    procs = max(1, min(os.cpu_count() or 1, 8))
    step = max(1, -(-n // (procs * 4)))
    jobs = [
        (str(ws.root), seed, s, min(n, s + step), tuple(types), into) for s in range(0, n, step)
    ]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(procs) as pool:
        chunks = pool.map(_generate_chunk, jobs)
    dropped = [d for chunk in chunks for d in chunk]
    return dropped


def drop_paced(ws: Workspace, staged: list[Dropped], into: str, rate: float) -> list[Dropped]:
    """Move the staged files into the partners' inboxes at `rate` files a second.

    A rename each, in generation order (purchase by purchase), on a fixed schedule: file i
    lands at start + i / rate (late ones go at once, they are not skipped). Returns them
    with the time each landed.
    """
    out = []
    start = time.time()
    for i, d in enumerate(staged):
        due = start + i / rate
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)
        os.replace(
            ws.root / into / d.partner_id / d.file_name, ws.inbox_of(d.partner_id) / d.file_name
        )
        out.append(Dropped(d.partner_id, d.file_name, d.msg_type, time.time()))
    return out
