"""The crash harness for pytest: the developer tool's run, with the figures kept for the report."""

from __future__ import annotations

from pathlib import Path

from hub.devtools.crash import POINTS, Drop, Report, check, make_stream, make_workspace, run_harness

__all__ = ["POINTS", "Drop", "Report", "check", "crash_run", "make_stream", "make_workspace"]


def crash_run(root: Path, *, messages: int, kills: int, seed: int) -> Report:
    """One harness run in `root`; the figures are printed (shown with -s), never asserted on time."""
    report = run_harness(root, messages=messages, kills=kills, seed=seed)
    figures = report.as_dict()
    print(
        f"crash harness: seed {seed}, {figures['messages']} files, {figures['kills']} kills "
        f"({figures['kills_at_point']}), {figures['points_not_reached']} points missed"
    )
    return report
