"""The migration report as one self-contained HTML page: charts as inline SVG, no network needed.

Charts are drawn by matplotlib (Agg backend, SVG output); every number comes from the same
`MigrationReport` as the JSON report, so the two cannot disagree.
"""

from __future__ import annotations

import html
import io
from collections import Counter
from typing import TYPE_CHECKING

from culturebridge_migration.reporting.report import CheckRecord, MigrationReport, timing_lines

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

GREEN, AMBER, RED, GREY = "#2e7d32", "#f9a825", "#c62828", "#9e9e9e"


def _chart(width: float, height: float) -> tuple[Figure, Axes]:
    """A figure of its own, not pyplot's: no global state, no display, and matplotlib imported only when a
    report is drawn (importing it cost every `dagster` command half a second)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog: the SVG is inlined in HTML


def _records_chart(report: MigrationReport) -> str:
    names = [e["entity"] for e in report.entities]
    loaded = [e["loaded"] for e in report.entities]
    rejected = [e["rejected"] for e in report.entities]
    fig, ax = _chart(7, 3.2)
    ax.barh(names, loaded, color=GREEN, label="loaded")
    ax.barh(names, rejected, left=loaded, color=RED, label="rejected")
    ax.invert_yaxis()
    ax.set_xlabel("records")
    ax.legend(loc="lower right")
    ax.set_title("Records per entity")
    return _svg(fig)


def _rejects_chart(report: MigrationReport) -> str:
    reasons = Counter(r["reason"] for r in report.rejects)
    fig, ax = _chart(7, max(1.5, 0.35 * len(reasons) + 0.8))
    if reasons:
        labels, counts = zip(*reasons.most_common(), strict=True)
        ax.barh(labels, counts, color=RED)
        ax.invert_yaxis()
    else:
        ax.text(0.5, 0.5, "no rejects", ha="center", va="center")
    ax.set_title("Rejects by reason")
    return _svg(fig)


def _checks_chart(report: MigrationReport) -> str:
    outcomes = Counter(c.label for c in report.checks)
    labels = ["pass", "warn", "fail", "skipped"]
    fig, ax = _chart(4, 2.6)
    ax.bar(labels, [outcomes[k] for k in labels], color=[GREEN, AMBER, RED, GREY])
    ax.set_title("Check outcomes")
    return _svg(fig)


def _durations_chart(report: MigrationReport) -> str:
    fig, ax = _chart(7, 3.2)
    ax.barh([e["entity"] for e in report.entities], [e["seconds"] for e in report.entities], color=GREY)
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title("Load duration per entity")
    return _svg(fig)


def render_html(report: MigrationReport) -> str:
    e = html.escape
    rows = "".join(
        f"<tr data-entity='{e(x['entity'])}'><td>{e(x['entity'])}</td><td class='exported'>{x['exported']}</td>"
        f"<td class='loaded'>{x['loaded']}</td><td class='rejected'>{x['rejected']}</td><td>{x['seconds']:.2f}</td></tr>"
        for x in report.entities
    )
    checks = "".join(_check_row(c) for c in report.checks)
    reasons = "".join(f"<li>{e(r)}</li>" for r in report.status_reasons)
    status, status_color = _banner(report)
    totals, kind = report.totals, e(report.run_kind.title)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{kind} — CultureBridge migration {e(report.run_id)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }} td, th {{ border: 1px solid #ccc; padding: .3rem .6rem; }}
th {{ background: #f3f3f3; }} .fail td {{ background: #fdecea; }} .warn td {{ background: #fff8e1; }} .skipped td {{ color: #666; }}
.status {{ color: white; background: {status_color}; padding: .2rem .6rem; border-radius: .3rem; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 1rem; }} .charts svg {{ max-width: 46rem; height: auto; }}
</style></head><body>
<h1>{kind}: CultureBridge migration report</h1>
<p>Run <code>{e(report.run_id)}</code>, generated {e(report.generated_at)}:
<span class="status" id="status">{e(status)}</span></p>
<p id="verdict">{e(report.verdict.headline())}. {e(report.verdict.tally())}.</p>
<p id="figures">{"<br>".join(e(line) for line in timing_lines(report))}</p>
<ul>{reasons}</ul>
<h2>Summary</h2>
<table id="summary"><tr><th>entity</th><th>exported</th><th>loaded</th><th>rejected</th><th>seconds</th></tr>{rows}
<tr><th>total</th><th id="total-exported">{totals["exported"]}</th><th id="total-loaded">{totals["loaded"]}</th>
<th id="total-rejected">{totals["rejected"]}</th><th></th></tr></table>
<div class="charts">{_records_chart(report)}{_rejects_chart(report)}{_checks_chart(report)}{_durations_chart(report)}</div>
<h2>Checks</h2>
<table id="checks"><tr><th>asset</th><th>check</th><th>outcome</th><th>offending</th><th>e.g. / why skipped</th></tr>
{checks}</table>
{_kept_sections(report)}
</body></html>
"""


def _banner(report: MigrationReport) -> tuple[str, str]:
    """The status and its colour; a rehearsal is never shown as a green SUCCESS: it changed nothing."""
    if report.rehearsal:
        return f"REHEARSAL, rolled back: Phase 2 unchanged ({report.status.lower()})", GREY
    return report.status, GREEN if report.status == "SUCCESS" else RED


def _check_row(c: CheckRecord) -> str:
    e = html.escape
    if c.skipped:
        offending, example = "", f"{c.skipped}; judged {c.judged_when or 'later'}"
    else:
        offending = "" if c.passed else f"{c.offending_rows} {c.counts}"
        example = ", ".join(c.sample_bubble_ids[:3])
    return (
        f"<tr class='{c.label}'><td>{e(c.asset)}</td><td>{e(c.check)}</td><td>{c.outcome}</td>"
        f"<td>{e(offending)}</td><td>{e(example)}</td></tr>"
    )


def _kept_sections(report: MigrationReport) -> str:
    """What Phase 2 keeps that no column maps, and the values changed on the way: nothing of Phase 1 unsaid."""
    e = html.escape
    parts = []
    unmapped = "".join(
        f"<tr><td>{e(entity)}</td><td>{e(name)}</td><td class='records'>{tally.get('records', 0)}</td>"
        f"<td>{e(', '.join(str(v) for v in tally.get('values', [])))}</td></tr>"
        for entity, fields in report.unmapped_fields.items()
        for name, tally in fields.items()
    )
    if unmapped:
        parts.append(
            "<h2>Fields no column maps</h2><p>Kept verbatim in each row's <code>bubble_extra</code>.</p>"
            "<table id='unmapped'><tr><th>entity</th><th>field</th><th>records</th><th>e.g.</th></tr>"
            f"{unmapped}</table>"
        )
    if report.types_not_migrated:
        rows = "".join(
            f"<tr><td>{e(name)}</td><td class='records'>{n}</td></tr>" for name, n in report.types_not_migrated.items()
        )
        parts.append(
            "<h2>Bubble types no table migrates</h2><p>Kept verbatim in the migration schema's "
            f"<code>bubble_records</code>.</p><table id='not-migrated'><tr><th>type</th><th>records</th></tr>{rows}</table>"
        )
    fixes = report.value_fixes
    if fixes["count"]:
        rows = "".join(f"<tr><td>{e(reason)}</td><td>{n}</td></tr>" for reason, n in fixes["by_reason"].items())  # type: ignore[union-attr]
        parts.append(
            f"<h2>Values changed before they were stored</h2><p>{fixes['count']} values; the originals are kept "
            f"in <code>value_fixes</code>.</p><table id='fixes'><tr><th>reason</th><th>values</th></tr>{rows}</table>"
        )
    parts.append(_files_section(report))
    return "\n".join(part for part in parts if part)


def _files_section(report: MigrationReport) -> str:
    """Bubble's files: what is copied into the team's storage, and which records still link Bubble."""
    if not report.files:
        return ""
    e = html.escape
    rows = "".join(
        f"<tr data-entity='{e(x['entity'])}'><td>{e(x['entity'])}</td><td class='files'>{x['files']}</td>"
        f"<td>{x['bytes'] / 1e6:.1f}</td><td>{x['copied_this_run']}</td><td class='missing'>{x['missing']}</td>"
        f"<td class='failed'>{x['failed']}</td><td>{e(', '.join(x['records_affected'][:5]))}</td></tr>"
        for x in report.files
    )
    return (
        "<h2>Bubble's files</h2><p>Copied into the team's storage; the original URLs are kept in "
        "<code>migration.files</code>. Records whose file is missing or failed still link Bubble.</p>"
        "<table id='files'><tr><th>entity</th><th>files copied</th><th>MB</th><th>in this run</th>"
        f"<th>missing at Bubble</th><th>failed</th><th>records affected, e.g.</th></tr>{rows}</table>"
    )
