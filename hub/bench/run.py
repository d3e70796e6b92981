"""One benchmark run: prepare, drop, run the hub, read back what it answered, then the floor."""

from __future__ import annotations

import cProfile
import os
import platform
import resource
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from hub import config
from hub.bench.floor import measure_floor
from hub.bench.workload import Dropped, drop_paced, generate, message_mix, prepare_workspace
from hub.clock import as_utc
from hub.store.db import dispose_all, engine_for, reading
from hub.store.states import DeliveryState
from hub.store.tables import deliveries, messages
from hub.workers import WORKER_ENV
from hub.workspace import Workspace

WORKER_CODE = "import sys; from hub.cli import main; sys.exit(main(sys.argv[1:]))"


@dataclass
class BenchOptions:
    """What `cebhub bench` was asked to do."""

    messages: int = 2000
    workers: int = 1
    database_url: str | None = None
    profile: Path | None = None
    keep: Path | None = None
    seed: int = 1
    rate: float | None = None  # files a second dropped while `cebhub run` works; None: all first
    batch_size: int | None = None  # messages per transaction; None: the hub's default
    check_processes: int | None = None  # [hub] check_processes; None: the hub's default
    write_process: bool | None = None  # [hub] write_process; None: the hub's default


def machine() -> dict:
    """The machine the figures were measured on."""
    from lxml import etree

    model = ""
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gb": round(pages / 2**30, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "lxml": ".".join(map(str, etree.LXML_VERSION[:3])),
        "libxml2": ".".join(map(str, etree.LIBXML_VERSION)),
        "load_average_1m": round(os.getloadavg()[0], 2),  # others' work skews every figure
    }


CREATE_PROBE_FILES = 300
# Above this a file create is slow for the reason `slow_create_note` gives: a few µs is usual.
SLOW_CREATE_US = 50.0


def file_create_cost(folder: Path) -> float:
    """µs to create, write and close a 3 KB file in `folder`, a new folder on the outbox's
    filesystem.

    The outbox writes several files a message, and what a create costs depends on the
    filesystem and even on the folder (on this project's machines: ~6 µs in most places and
    ~200 µs under a crowded /tmp), so each run records it beside its figures. The files are
    left where they are, to go with the bench's folder: removing them would make the hub's
    own creates slower still (`slow_create_note`).
    """
    folder.mkdir()
    body = b"x" * 3000
    start = time.perf_counter()
    for i in range(CREATE_PROBE_FILES):
        with open(folder / f"f{i}.xml", "wb") as f:
            f.write(body)
    return round((time.perf_counter() - start) / CREATE_PROBE_FILES * 1e6, 1)


def slow_create_note(micros: float) -> str | None:
    """What a reader of a run should know when creating a file was slow, else None.

    This project's machines have ext4 with no journal (docs/performance.md, "The disk,
    explained"): when a file is made, the kernel skips each free inode of the folder's group
    that was freed in the last one to six minutes, reading its inode block to learn when.
    After a large deletion (another run's workspace: the bench removes its own at the end) a
    create costs 100-1,000 µs instead of a few, and the outbox writes several files a message.
    """
    if micros <= SLOW_CREATE_US:
        return None
    return (
        f"creating a file took {micros:.0f} µs (a few µs is usual): the figures are not "
        "comparable with a run on a quiet filesystem. On ext4 without a journal, files "
        "deleted in the last minutes slow every new one (another run's workspace, say): "
        "wait some minutes after a large deletion, and keep workspaces (--keep) while "
        "comparing runs"
    )


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted `values` (0 when empty)."""
    if not values:
        return 0.0
    rank = max(1, min(len(values), round(q / 100 * len(values) + 0.5)))
    return values[rank - 1]


def _epoch(when: datetime) -> float:
    return as_utc(when).timestamp()


# ---------------------------------------------------------------- PostgreSQL: a schema per run


def _is_postgres(url: str | None) -> bool:
    return bool(url) and url.startswith("postgresql")


def _scratch_schema(url: str) -> tuple[str, str]:
    """A new empty schema; returns (schema, URL whose connections use it)."""
    schema = f"cebhub_bench_{secrets.token_hex(4)}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return schema, scoped.render_as_string(hide_password=False)


def _drop_schema(url: str, schema: str) -> None:
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


# ---------------------------------------------------------------- running the hub


def _cpu_seconds(*usages: resource.struct_rusage) -> float:
    return sum(u.ru_utime + u.ru_stime for u in usages)


def _hub_cpu_now() -> float:
    """This process's CPU time and that of its children that have ended (the helpers)."""
    return _cpu_seconds(
        resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    )


def _run_in_process(ws: Workspace, profile: Path | None) -> tuple[float, float, int, float]:
    """(start, end, peak RSS in KiB, CPU seconds) of `Hub(ws).run_once()` in this process,
    the CPU time including its checker and file-writer processes."""
    from hub import gctune
    from hub.runner import Hub

    cpu = _hub_cpu_now()
    hub = Hub(ws)
    gctune.settle()  # as `cebhub run` does
    profiler = cProfile.Profile() if profile else None
    start = time.time()
    if profiler:
        profiler.enable()
    hub.run_once()
    if profiler:
        profiler.disable()
        profiler.dump_stats(str(profile))
    end = time.time()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return start, end, peak, _hub_cpu_now() - cpu


def _run_workers(ws: Workspace, workers: int) -> tuple[float, float, int, float]:
    """(start, end, largest worker peak RSS in KiB, CPU seconds of all) of N `cebhub run
    --once` processes."""
    args = [sys.executable, "-c", WORKER_CODE, "-w", str(ws.root), "run", "--once"]
    args += ["--log-format", "json"]
    start = time.time()
    # As `cebhub run --workers N` starts them: numbered, so that no worker starts helpers.
    # Their log lines (one a message) go to the workspace, as a paced run's do, not to the
    # terminal of whoever runs the bench.
    with open(ws.root / "bench-workers.log", "wb") as log_file:
        procs = [
            subprocess.Popen(args, env={**os.environ, WORKER_ENV: str(i)}, stderr=log_file)
            for i in range(workers)
        ]
    peak, cpu, failed = 0, 0.0, []
    for proc in procs:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        peak = max(peak, usage.ru_maxrss)
        cpu += _cpu_seconds(usage)
        if proc.returncode:
            failed.append(proc.returncode)
    if failed:
        tail = (ws.root / "bench-workers.log").read_bytes()[-2000:].decode(errors="replace")
        raise RuntimeError(f"worker exit codes {failed}; the end of their log:\n{tail}")
    return start, time.time(), peak, cpu


STAGING = "bench-staging"  # where a paced run's files wait to be dropped, beside the inbox
STARTUP_SECONDS = 3.0  # `cebhub run` imports, migrates and starts watching before the drop
PACED_TIMEOUT = 900.0  # seconds after the last drop before a paced run gives up waiting


def _all_answered(ws: Workspace, expected: int) -> bool:
    """Whether every dropped message has a delivered receipt, asked while the hub runs.

    Read on a reading connection: a plain BEGIN, which the hub's writes never wait for (an
    ordinary one takes the write lock, and held it here for a count over every delivery
    row, which grows with the run: the hub's main thread slept in SQLite's busy handler for
    16 % of its time at 60,000 messages). The exact count, a scan of all deliveries, only
    once every message is recorded and no receipt waits to be written.
    """
    engine = engine_for(config.load(ws), ws)
    with reading(engine) as conn:
        if conn.execute(select(func.count()).select_from(messages)).scalar() < expected:
            return False
        pending = conn.execute(
            select(deliveries.c.id)
            .where(deliveries.c.state == DeliveryState.PENDING, deliveries.c.kind == "receipt")
            .limit(1)
        ).first()
        if pending is not None:
            return False
        answered = conn.execute(
            select(func.count(func.distinct(deliveries.c.message_id))).where(
                deliveries.c.kind == "receipt", deliveries.c.delivered_at.is_not(None)
            )
        ).scalar()
    return answered >= expected


def _run_paced(
    ws: Workspace, staged: list[Dropped], rate: float, notes: list[str]
) -> tuple[float, float, int, float, list[Dropped]]:
    """(start, end, peak RSS in KiB, CPU seconds, files as dropped) of a real `cebhub run`
    (forever, console off) while the staged files are dropped at `rate` a second; stopped
    with SIGTERM once every file is answered. The CPU time is the whole run's, start-up and
    idle waits included."""
    doc = config.read_document(ws)
    doc.setdefault("console", {})["enabled"] = False
    config.write_document(ws, doc)
    args = [sys.executable, "-c", WORKER_CODE, "-w", str(ws.root), "run", "--log-format", "json"]
    with open(ws.root / "bench-run.log", "wb") as log_file:  # the hub's JSON lines, as in service
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log_file)
    try:
        time.sleep(STARTUP_SECONDS)
        start = time.time()
        dropped = drop_paced(ws, staged, STAGING, rate)
        offered = len(dropped) / max(1e-9, time.time() - start)
        notes.append(f"paced drop: {rate:g}/s asked, {offered:.0f}/s achieved by the dropper")
        deadline = time.time() + PACED_TIMEOUT
        while not _all_answered(ws, len(dropped)) and time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"cebhub run exited with {proc.returncode}")
            time.sleep(0.5)
        end = time.time()
    finally:
        proc.send_signal(signal.SIGTERM)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        notes.append(f"cebhub run exited with {proc.returncode} on SIGTERM")
    return start, end, usage.ru_maxrss, _cpu_seconds(usage), dropped


def _answers(ws: Workspace) -> tuple[dict[str, float], dict[str, int], float | None]:
    """(first receipt delivered per input file name, message states, first claim time)."""
    engine = engine_for(config.load(ws), ws)
    first = func.min(deliveries.c.delivered_at)
    with engine.connect() as conn:
        rows = conn.execute(
            select(messages.c.file_name, first)
            .join(deliveries, deliveries.c.message_id == messages.c.id)
            .where(deliveries.c.kind == "receipt", deliveries.c.delivered_at.is_not(None))
            .group_by(messages.c.file_name)
        ).all()
        states = dict(
            conn.execute(select(messages.c.state, func.count()).group_by(messages.c.state)).all()
        )
        claimed = conn.execute(select(func.min(messages.c.received_at))).scalar()
    answered = {name: _epoch(at) for name, at in rows}
    return answered, states, (_epoch(claimed) if claimed else None)


def _archived(ws: Workspace, dropped: list[Dropped]) -> list[tuple[str, Path]]:
    """The input files as the hub archived them, for the floor."""
    partner = {d.file_name: d.partner_id for d in dropped}
    found = []
    for path in sorted(ws.archive.glob("*/*/*")):
        original = path.name.partition("--")[2]
        if original in partner:
            found.append((partner[original], path))
    return found


def run_bench(options: BenchOptions, notes: list[str]) -> dict:
    """Run one benchmark and return its figures; `notes` collects what the reader should know."""
    types, missing = message_mix()
    if missing:
        notes.append(
            f"{', '.join(missing)} not handled by the pipeline yet: "
            f"the mix is {', '.join(types)} in equal parts"
        )
    workers = options.workers
    if workers > 1 and not _is_postgres(options.database_url):
        notes.append("several workers need PostgreSQL; SQLite runs one")
        workers = 1
    if workers > 1 and options.profile:
        notes.append("--profile covers the in-process hub only; not written with --workers")
    root = Path(options.keep) if options.keep else Path(tempfile.mkdtemp(prefix="cebhub-bench-"))
    if options.keep:
        root.mkdir(parents=True, exist_ok=True)
        if any(root.iterdir()):
            raise ValueError(f"{root} is not empty")
    schema, url = None, options.database_url
    if _is_postgres(url):
        schema, url = _scratch_schema(url)
    try:
        before = machine()
        ws = prepare_workspace(
            root / "ws", url, options.batch_size, options.check_processes, options.write_process
        )
        before["file_create_us"] = file_create_cost(root / "create-probe")
        slow = slow_create_note(before["file_create_us"])
        if slow:
            notes.append(slow)
        t0 = time.time()
        into = STAGING if options.rate else "inbox"
        dropped = generate(ws, options.messages, types, seed=options.seed, into=into)
        generated = time.time() - t0
        # The generated files reach the disk now, as a partner's files would long before the
        # hub took them (the kernel writes dirty pages back within 30 s). Else the hub's first
        # sync of the filesystem (a delivery round's syncfs) writes them all: a stall of
        # ~300 ms that held the first receipts of a paced run (docs/performance.md, round 15).
        os.sync()
        if options.rate:
            dispose_all()  # the hub is another process; ours reads only at the end
            start, end, peak_kib, cpu, dropped = _run_paced(ws, dropped, options.rate, notes)
        elif workers > 1:
            dispose_all()  # no pooled connection of ours crosses into the run
            start, end, peak_kib, cpu = _run_workers(ws, workers)
        else:
            start, end, peak_kib, cpu = _run_in_process(ws, options.profile)
        answered, states, first_claim = _answers(ws)
        if workers > 1 and first_claim is not None:
            start = max(start, min(first_claim, end))  # process start-up is not hub work
        latencies = sorted(
            max(0.0, answered[d.file_name] - d.dropped_at)
            for d in dropped
            if d.file_name in answered
        )
        last = max(answered.values(), default=end)
        seconds = max(1e-9, last - start)
        settings = config.load(ws)
        floor = measure_floor(ws, settings, _archived(ws, dropped), root / "floor.db")
        hub_rate = len(answered) / seconds
        return {
            "messages": len(dropped),
            "answered": len(answered),
            "unanswered": len(dropped) - len(answered),
            "states": states,
            "mix": types,
            "workers": workers,
            "rate": options.rate,  # None: every file dropped before the hub started
            "database": "postgresql" if schema else "sqlite",
            "batch_size": settings.hub.batch_size,
            # workers of `cebhub run --workers N` check in their own process by default
            "check_processes": (
                settings.hub.checkers() if workers == 1 else settings.hub.check_processes or 0
            ),
            "write_process": (
                settings.hub.file_writer() if workers == 1 else bool(settings.hub.write_process)
            ),
            "generate_seconds": round(generated, 2),
            "hub_seconds": round(seconds, 3),
            "wall_seconds": round(end - start, 3),
            "messages_per_second": round(hub_rate, 1),
            "latency_ms": {
                f"p{q}": round(percentile(latencies, q) * 1000, 1) for q in (50, 95, 99)
            },
            "peak_rss_mb": round(peak_kib / 1024, 1),
            # user + system time of the hub's processes (threads, checker, file writer) per
            # message answered: steadier than the rate where the disk's costs swing
            "cpu_us_per_message": round(cpu / max(1, len(answered)) * 1e6),
            "floor": {
                "messages": floor.messages,
                "messages_per_second": round(floor.per_second, 1),
                "micros_per_message": floor.micros(),
            },
            "ratio": round(hub_rate / floor.per_second, 3) if floor.per_second else None,
            "machine": {**before, "load_average_1m_after": machine()["load_average_1m"]},
            "workspace": str(ws.root) if options.keep else None,
            "notes": notes,
        }
    finally:
        dispose_all()
        if schema and options.database_url:
            _drop_schema(options.database_url, schema)
        if not options.keep:
            shutil.rmtree(root, ignore_errors=True)
