"""The reproducibility report and the chapters' verdict boxes, rendered from the ledger's rows
and the shipped seed spread: one row renderer, shown as HTML in the book and as Markdown text
elsewhere.
"""
from __future__ import annotations

import html
from pathlib import Path

from .ledger import read_ledger
from .robustness import load as robustness
from .robustness import machine as robustness_machine
from .robustness import over_seeds

__all__ = ["Report", "Verdict", "verdict", "report_header", "report_markdown", "chapter_status"]


_BADGE = {"pass": "✓ pass", "fail": "✗ FAIL", "not reproduced": "⚠ not reproduced",
          "tendency": "⚠ tendency, not on this run"}  # plain glyphs: no emoji font needed


# The report's columns: what a reader compares per claim. The build's preset, seed, machine,
# device, precision, torch and threads are the same for every row: they are in the header.
_REPORT_COLUMNS = (("claim", "26%"), ("chapter", "12%"), ("status", "10%"), ("measured", "9%"), ("check", "8%"),
                   ("over seeds", "17%"), ("paper", "18%"))


_ROW_KEY = {"status": "badge", "over seeds": "seeds"}  # the columns whose cell is not the row's key of their name


def _report_rows(ledger: dict[str, dict], spread: dict[str, dict]) -> list[dict]:
    """One dict per claim (sorted by chapter, then id) with every cell as plain text: the one
    source of both renderings."""
    return [dict(cid=cid, description=r["description"], chapter=r["chapter"], status=r["status"],
                 badge=_BADGE.get(r["status"], r["status"]), measured=f"{r['measured']:.4g}",
                 check=f"{r['op']} {r['threshold']:.4g}", seeds=over_seeds(cid, spread), paper=r["paper"])
            for cid, r in sorted(ledger.items(), key=lambda kv: (kv[1].get("chapter", ""), kv[0]))]


def report_header(ledger: dict[str, dict], spread: dict[str, dict] | None = None) -> str:
    """What this build ran on, from its ledger rows: the CPU (or GPU) model, device, precision,
    torch, threads, preset and seed; and how many runs the over-seeds column summarises."""
    from .provenance import hardware

    def values(field: str) -> str:
        found = sorted({str(r.get(field)) for r in ledger.values() if r.get(field) not in (None, "", "none")})
        return ", ".join(found) or "none"
    spread = robustness() if spread is None else spread
    runs = {(r["seed"], r.get("series")) for c in spread.values() for r in c.get("runs", [])}
    on = robustness_machine() if runs else None
    seeds = (f"over seeds: data/robustness.json, {len(runs)} (seed, series) runs" + (f" on {on}" if on else "")
             if runs else "over seeds: no data/robustness.json shipped yet (make robustness)")
    return (f"Built on {hardware()}; device {values('device')}; precision {values('precision')}; torch "
            f"{values('torch')}, {values('threads')} threads; preset {values('preset')}, seed {values('seed')}; {seeds}.")


def _cell(column: str, r: dict, markup: str) -> str:
    """One cell of the report, the same content in either markup (``"md"`` or ``"html"``)."""
    e = html.escape if markup == "html" else str
    if column == "claim":
        cid = f"<code>{e(r['cid'])}</code>" if markup == "html" else f"`{r['cid']}`"
        return f"{cid}<br><small>{e(r['description'])}</small>"
    if column == "chapter":
        return (f'<a href="{e(r["chapter"])}.html">{e(r["chapter"])}</a>' if markup == "html"
                else f"[{r['chapter']}]({r['chapter']}.ipynb)")
    return e(r[_ROW_KEY.get(column, column)])


def _render(ledger: dict[str, dict], spread: dict[str, dict], markup: str) -> str:
    """The report in ``markup``: the header, one row per claim, the count of passes."""
    if not ledger:
        empty = "The ledger is empty: no chapter has recorded a claim in this build."
        return f"<p><em>{empty}</em></p>" if markup == "html" else f"*{empty}*"
    rows = _report_rows(ledger, spread)
    ok = sum(r["status"] == "pass" for r in rows)
    header, total = report_header(ledger, spread), f"{ok} of {len(rows)} claims pass."
    if markup == "md":
        lines = [header, "", "| " + " | ".join(h for h, _ in _REPORT_COLUMNS) + " |", "|" + "---|" * len(_REPORT_COLUMNS)]
        lines += ["| " + " | ".join(_cell(h, r, "md") for h, _ in _REPORT_COLUMNS) + " |" for r in rows]
        return "\n".join(lines + [f"\n**{total}**"])
    cols = "".join(f'<col style="width:{w}">' for _, w in _REPORT_COLUMNS)
    head = "".join(f"<th>{h}</th>" for h, _ in _REPORT_COLUMNS)
    body = "".join(
        f'<tr class="geomlib-claim status-{html.escape(r["status"].replace(" ", "-"))}">'
        + "".join((f'<td style="{_STATUS_STYLE.get(r["status"], "")};font-weight:600">' if h == "status" else "<td>")
                  + _cell(h, r, "html") + "</td>" for h, _ in _REPORT_COLUMNS)
        + "</tr>" for r in rows)
    return (f'<p class="geomlib-report-header">{html.escape(header)}</p>'
            '<table class="geomlib-report" style="width:100%;table-layout:fixed;font-size:0.85em;'
            f'overflow-wrap:anywhere"><colgroup>{cols}</colgroup><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table><p><strong>{total}</strong></p>")


def report_markdown(ledger: dict[str, dict], spread: dict[str, dict] | None = None) -> str:
    """The reproducibility report: one row per claim, status, measured vs threshold, the claim's
    pass rate over seeds (``spread``: :func:`geomlib.robustness.load`, read from the shipped file
    by default) and the paper's statement, under a header naming the build's machine."""
    return _render(ledger, robustness() if spread is None else spread, "md")


_STATUS_STYLE = {"pass": "background:#e6f4ea;color:#137333", "fail": "background:#fce8e6;color:#a50e0e",
                 "not reproduced": "background:#fef7e0;color:#8a5300", "tendency": "background:#fef7e0;color:#8a5300"}


class Report:
    """The reproducibility report: one row per claim of the ledger, as an HTML table in the book
    (status coloured, fitted to the page's width) and as Markdown text elsewhere, under a header
    naming the build's machine, device, precision, torch and threads."""

    def __init__(self, ledger: dict[str, dict], spread: dict[str, dict] | None = None):
        self.ledger = ledger
        self.spread = robustness() if spread is None else spread

    def __repr__(self) -> str:
        return _render(self.ledger, self.spread, "md")

    def _repr_html_(self) -> str:
        return _render(self.ledger, self.spread, "html")


def chapter_status(rows: list[dict]) -> str:
    """One line for a chapter's claims: ``"✓ 3 of 3 pass"``, ``"⚠ 3 pass, 2 not reproduced"``..."""
    if not rows:
        return "not run in this build"
    counts = {k: sum(r["status"] == k for r in rows) for k in ("pass", "not reproduced", "tendency", "fail")}
    if counts["fail"]:
        return f"✗ {counts['fail']} of {len(rows)} FAIL"
    if counts["not reproduced"] or counts["tendency"]:
        parts = [f"{counts[k]} {k}" for k in ("not reproduced", "tendency") if counts[k]]
        return f"⚠ {counts['pass']} pass, " + ", ".join(parts)
    return f"✓ {counts['pass']} of {len(rows)} pass"


# The verdict box's columns and their widths (a fixed layout that wraps, as the report's table).
_VERDICT_COLUMNS = [("status", "11%"), ("claim", "27%"), ("measured", "10%"), ("check", "10%"), ("over seeds", "15%"),
                    ("paper", "27%")]


class Verdict:
    """A chapter's verdict box: every claim the chapter recorded in the ledger, measured value
    against the check and the paper's statement. Rendered as an admonition in the book."""

    def __init__(self, chapter: str, rows: list[dict], spread: dict[str, dict] | None = None):
        self.chapter, self.rows = chapter, rows
        self.spread = robustness() if spread is None else spread

    @property
    def status(self) -> str:
        return chapter_status(self.rows)

    def __repr__(self) -> str:
        lines = [f"Verdict for {self.chapter}: {self.status}"]
        lines += [f"  {_BADGE.get(r['status'], r['status'])}  {r['claim']}: measured {r['measured']:.4g} "
                  f"{r['op']} {r['threshold']:.4g}  over seeds: {over_seeds(r['claim'], self.spread)}  "
                  f"(paper: {r['paper']})" for r in self.rows]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape
        kind = "tip" if self.status.startswith("✓") else ("warning" if self.status.startswith("⚠") else "error")
        # each cell names its column (data-label): on a narrow screen the book's stylesheet stacks a row's cells
        body = "".join(
            "<tr>" + "".join(f'<td data-label="{h}">{v}</td>' for (h, _), v in zip(_VERDICT_COLUMNS, (
                e(_BADGE.get(r["status"], r["status"])),
                f"<code>{e(r['claim'])}</code><br><small>{e(r['description'])}</small>",
                f"{r['measured']:.4g}", f"{e(r['op'])} {r['threshold']:.4g}",
                e(over_seeds(r["claim"], self.spread)),
                e(r["paper"]) + (f"<br><small>why not: {e(str(r['details']['known_failure']))}</small>"
                                 if r["status"] != "pass" and r.get("details", {}).get("known_failure") else ""))))
            + "</tr>" for r in self.rows)
        seeds = sorted({(r["preset"], r["seed"]) for r in self.rows})
        run = ", ".join(f"preset {p}, seed {s}" for p, s in seeds)
        computed = sorted({f"{r.get('precision') or '?'} on {r.get('device') or '?'}" for r in self.rows})
        run += "; computed in " + ", ".join(computed)
        cols = "".join(f'<col style="width:{w}">' for _, w in _VERDICT_COLUMNS)
        head = "".join(f"<th>{h}</th>" for h, _ in _VERDICT_COLUMNS)
        return (f'<div class="admonition {kind} geomlib-verdict"><p class="admonition-title">Verdict: {e(self.status)}'
                f"</p><p>Measured on this build ({e(run)}), checked against thresholds a failure of the "
                f"phenomenon would violate; <em>over seeds</em> is the same check on seeds 0-4 (and in fp32) from "
                f"<code>make robustness</code> (data/robustness.json); all rows are in the reproducibility report.</p>"
                f'<table style="width:100%;table-layout:fixed;overflow-wrap:anywhere"><colgroup>{cols}</colgroup>'
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def verdict(chapter: str, ledger: Path | str | None = None) -> Verdict:
    """The verdict box for ``chapter``: its rows of the ledger, sorted by claim id."""
    rows = [r for r in read_ledger(ledger).values() if r.get("chapter") == chapter]
    if not rows:
        raise ValueError(f"the ledger has no claims for chapter {chapter!r}: call check_claim first")
    return Verdict(chapter, rows)
