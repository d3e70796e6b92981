"""The backlog at a glance: folders, messages, deliveries and quarantine."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, case, func, select

from adapters.base import read_status
from adapters.directory import is_temporary
from hub.config import Settings
from hub.store.states import DeliveryState
from hub.store.tables import deliveries, messages
from hub.workspace import Workspace

CERT_HORIZON_DAYS = 30  # certificates expiring this soon are shown


def age_text(seconds: float | None) -> str:
    """An age for people: 45s, 12m, 3.5h, 2.0d."""
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def folder_backlog(folder: Path) -> dict[str, Any]:
    """Files waiting in a folder and the age in seconds of the oldest."""
    count, oldest = 0, None
    try:
        with os.scandir(folder) as it:
            for entry in it:
                if entry.is_file(follow_symlinks=False) and not is_temporary(entry.name):
                    count += 1
                    mtime = entry.stat(follow_symlinks=False).st_mtime
                    oldest = mtime if oldest is None else min(oldest, mtime)
    except (FileNotFoundError, NotADirectoryError):  # not there, or a file in its place
        pass
    age = round(time.time() - oldest, 1) if oldest is not None else None
    return {"files": count, "oldest_age_seconds": age}


TOP_REASONS = 5  # quarantine reasons shown, most frequent first


def _reason_of(note: Path) -> str:
    """The reason line of a quarantine note, cut to its code and first words."""
    try:
        text = note.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "unreadable reason file"
    for line in text.splitlines():
        if line.startswith("reason: "):
            reason = line.removeprefix("reason: ")
            return reason.split(":")[0][:80]
    return "no reason recorded"


def _quarantine(ws: Workspace) -> dict[str, Any]:
    count = 0
    reasons: Counter[str] = Counter()
    for partner_dir in ws.quarantine.glob("*"):
        if not partner_dir.is_dir():
            continue
        for p in partner_dir.iterdir():
            if p.name.endswith(".reason.txt"):
                reasons[_reason_of(p)] += 1
            else:
                count += 1
    top = [{"reason": r, "files": n} for r, n in reasons.most_common(TOP_REASONS)]
    return {"files": count, "top_reasons": top}


def _lists_by_state(conn) -> dict[str, int]:
    from hub.clearance.tables import lists

    return dict(conn.execute(select(lists.c.state, func.count()).group_by(lists.c.state)).all())


def _certificates(ws: Workspace, settings: Settings) -> list[dict[str, Any]]:
    from hub.trust import expiring_certificates

    try:
        return expiring_certificates(ws, settings, CERT_HORIZON_DAYS)
    except Exception as exc:  # a missing certificate file must not hide the rest of the status
        return [{"partner": "?", "error": str(exc)}]


def collect(ws: Workspace, settings: Settings, engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        by_state = dict(
            conn.execute(select(messages.c.state, func.count()).group_by(messages.c.state)).all()
        )
        delivery_states = dict(
            conn.execute(
                select(deliveries.c.state, func.count()).group_by(deliveries.c.state)
            ).all()
        )
        backlog = _delivery_backlog(conn)
        lists_by_state = _lists_by_state(conn)
    partners = {
        p.id: {
            "role": p.role.value,
            "transport": p.transport,
            "inbox": folder_backlog(ws.inbox_of(p.id)),
            "outbox": folder_backlog(ws.outbox_of(p.id)),
            "claims": folder_backlog(ws.claims / p.id),
        }
        for p in settings.partners.values()
    }
    return {
        "workspace": str(ws.root),
        "partners": partners,
        "messages": by_state,
        "deliveries": delivery_states,
        "delivery_backlog": backlog,
        "adapters": [a for a in read_status(ws) if a.get("partner_id") in settings.partners],
        "quarantine": _quarantine(ws),
        "lists": lists_by_state,
        "certificates_expiring": _certificates(ws, settings),
    }


def _delivery_backlog(conn) -> dict[str, Any]:
    """Pending (never tried), retrying (failed, will be tried again) and dead, per partner too."""
    c = deliveries.c
    shown = case(
        (and_(c.state == DeliveryState.PENDING, c.attempts > 0), "retrying"), else_=c.state
    )
    rows = conn.execute(
        select(c.partner_id, shown, func.count())
        .where(c.state != DeliveryState.DELIVERED)
        .group_by(c.partner_id, shown)
    ).all()
    totals = {"pending": 0, "retrying": 0, "dead": 0}
    by_partner: dict[str, dict[str, int]] = {}
    for partner_id, state, n in rows:
        totals[state] = totals.get(state, 0) + n
        by_partner.setdefault(partner_id, {})[state] = n
    return {**totals, "by_partner": by_partner}
