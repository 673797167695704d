"""A fallback's own report: what it wrote to Bubble per type, what it could not (conflicts, dead letters),
and whether Bubble now holds every change the app made since cutover (summary and JSON)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from culturebridge_migration.fallback.read_back import SHOWN, ReadBack
from culturebridge_migration.fallback.replay import Replay
from culturebridge_migration.reporting.verdict import RunKind


def fallback_verdict(replay: Replay, back: ReadBack | None) -> tuple[bool, str]:
    """(fit to point DNS back at Phase 1, the verdict line)."""
    if replay.rehearsal:
        fit = not replay.problems
        return fit, "VERDICT: REHEARSAL, nothing written" + ("" if fit else f"; {len(replay.problems)} would fail")
    if back is None:
        return False, "VERDICT: NOT COMPLETE: Bubble was not read back"
    if back.complete and not replay.problems:
        return True, "VERDICT: COMPLETE: Bubble holds every change the Phase 2 app made since cutover"
    return False, (
        f"VERDICT: NOT COMPLETE: {back.offending} differences read back, {len(replay.problems)} changes not written"
    )


def fallback_json(run_id: str, replay: Replay, back: ReadBack | None) -> dict:
    fit, verdict = fallback_verdict(replay, back)
    return {
        "run_id": run_id,
        "run_kind": (RunKind.FALLBACK_REHEARSAL if replay.rehearsal else RunKind.FALLBACK).value,
        "generated_at": datetime.now(UTC).isoformat(),
        "complete": fit,
        "verdict": verdict,
        "planned": replay.planned,
        "written": replay.done,
        "adopted_after_crash": replay.adopted,
        "conflicts": [vars(p) for p in replay.problems if p.kind == "conflict"],
        "dead_letters": [vars(p) for p in replay.problems if p.kind == "dead_letter"],
        "read_back": None if back is None else vars(back),
    }


def fallback_texts(report: dict) -> dict[str, str]:
    """The fallback's report files (kind -> text), the first line saying what kind of run made them."""
    kind = RunKind(report["run_kind"])
    lines = [f"{kind.title} — run {report['run_id']}", ""]
    lines.append(
        f"{'type':<20} {'create':>7} {'change':>7} {'delete':>7}   ({'planned' if kind is RunKind.FALLBACK_REHEARSAL else 'written of planned'})"
    )
    for name, planned in report["planned"].items():
        done = report["written"].get(name, {})
        cells = [
            str(planned[op]) if kind is RunKind.FALLBACK_REHEARSAL else f"{done.get(op, 0)}/{planned[op]}"
            for op in ("insert", "update", "delete")
        ]
        lines.append(f"{name:<20} " + " ".join(f"{c:>7}" for c in cells))
    if report["adopted_after_crash"]:
        lines.append(
            f"{report['adopted_after_crash']} creates of an interrupted run found in Bubble by phase2_id, not made again"
        )
    for title, problems in (
        ("Conflicts (changed in Bubble after cutover; not overwritten)", report["conflicts"]),
        ("Dead letters (Bubble refused; fix and run the fallback again)", report["dead_letters"]),
    ):
        if problems:
            lines += ["", f"{title}: {len(problems)}"]
            lines += [f"  - {p['entity']} {p['row_id']} ({p['operation']}): {p['reason']}" for p in problems[:SHOWN]]
    back = report["read_back"]
    if back is not None:
        checked = sum(back["checked"].values())
        lines += ["", f"Read back from Bubble: {checked} rows compared"]
        for title in ("missing", "lingering", "different"):
            if back[title]:
                lines.append(f"  {title}: {len(back[title])}")
                lines += [f"    - {what}" for what in back[title][:SHOWN]]
    lines += ["", report["verdict"]]
    return {
        "fallback_summary": "\n".join(lines) + "\n",
        "fallback_report": json.dumps(report, indent=2, default=str) + "\n",
    }
