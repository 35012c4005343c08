"""Where a preset departs from the authors' release, and the setup table that shows it.

Pure functions of two specs: :func:`departures` walks a preset and the release's recipe side by
side and lists every setting where they differ, each with the reason the preset gives beside the
value (``why=`` on the spec that holds it, the deepest one that names the setting);
:func:`table` renders them, grouped, as a chapter's setup-vs-release table.
"""
from __future__ import annotations

import html
import numbers
import re
from dataclasses import is_dataclass
from typing import Any, NamedTuple

from ..specs import Stage, values

__all__ = ["Departure", "departures", "SetupTable", "table"]


class Departure(NamedTuple):
    path: str  # e.g. "run.stages[mixed].train.lr"
    ours: Any
    release: Any
    why: str | None  # the reason given beside the value (None: none given)


_SKIP = {"eval_every", "seed", "batch_size", "seeds", "size_seeds", "k", "stop_at", "stop_patience"}
# bookkeeping, not recipe: how often a run is evaluated, how many seeds the book runs (the release
# runs one), which metric parameter a chapter reports; a stage's eval cadence and a run's stop rule


def _fmt(value) -> str:
    if isinstance(value, Stage):
        return f"{value.data} ({value.train.steps:,} steps)"
    if isinstance(value, tuple) and value and all(isinstance(v, Stage) for v in value):
        return " + ".join(_fmt(v) for v in value)
    if is_dataclass(value):
        return type(value).__name__
    if isinstance(value, dict):
        return f"{len(value)} entries"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    return "—" if value is None else str(value)


def departures(ours, release, path: str = "", _reasons: tuple = ()) -> list[Departure]:
    """Every setting where ``ours`` differs from ``release``, with its reason. Stages are matched
    by their data (``stages[mixed]``); a different list of stages is one row (``stages``) plus the
    matched stages' own differences. Bookkeeping (evaluation cadence, seeds, stop rules) is skipped."""
    if is_dataclass(ours) and is_dataclass(release) and type(ours) is type(release):
        reasons = _reasons + ((path, ours.why),) if getattr(ours, "why", None) else _reasons
        rows = []
        for f in values(ours):
            if f.name not in _SKIP:
                rows += departures(getattr(ours, f.name), getattr(release, f.name), _join(path, f.name), reasons)
        return rows
    if isinstance(ours, tuple) and ours and all(isinstance(s, Stage) for s in ours + tuple(release or ())):
        same_list = [s.data for s in ours] == [s.data for s in release] and len(ours) == len(release)
        rows = [] if same_list else [Departure(path, ours, release, _reason(path, _reasons))]
        theirs = {s.data: s for s in release}
        for s in ours:
            if s.data in theirs:
                rows += departures(s, theirs[s.data], f"{path}[{s.data}]", _reasons)
        return rows
    if isinstance(ours, dict) and isinstance(release, dict) and set(ours) == set(release):
        return [r for k in ours for r in departures(ours[k], release[k], f"{path}[{k}]", _reasons)]
    if _same(ours, release):
        return []
    return [Departure(path, ours, release, _reason(path, _reasons))]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _reason(path: str, reasons: tuple) -> str | None:
    """The reason for the setting at ``path``: from the deepest spec on the way that names it
    (relative to that spec: ``"train.lr"`` in a Stage at ``run.stages[mixed]``). Every spec on
    ``reasons`` encloses ``path``, and a spec's settings are joined to it by a dot."""
    for prefix, why in reversed(reasons):
        rel = path[len(prefix) + 1:] if prefix else path
        if rel in why:
            return why[rel]
    return None


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, numbers.Real) and isinstance(b, numbers.Real) and float(a) == float(b)
    return a == b


# Words of a setting's path that say which part of the setup it belongs to (the one-line summary).
_MODEL_WORDS = {"model", "net", "n_layer", "n", "layer", "head", "embd", "width", "dim", "init", "std", "pos",
                "residual", "scaled", "dropout", "tied", "freeze", "embeddings", "loss"}
_TRAINING_WORDS = {"stages", "train", "lr", "steps", "batch", "fraction", "weight", "decay", "betas", "warmup",
                   "schedule", "precision", "every", "optimizer", "clip", "grad", "ratio", "epochs"}


class SetupTable:
    """The setup-vs-release table of a chapter's preset (shown as a table in a notebook)."""

    def __init__(self, chapter: str, name: str, rows: list[tuple[str, str, str, str]]):
        self.chapter, self.name, self.rows = chapter, name, rows

    def _repr_markdown_(self) -> str:
        if not self.rows:
            return (f"**Setup:** preset `{self.name}` is the authors' release recipe: every setting as the release "
                    "(evaluation cadence and seeds aside).")
        differ = f"{len(self.rows)} settings differ" if len(self.rows) > 1 else "1 setting differs"
        lines = [f"**Setup vs the authors' release** (preset `{self.name}`; {differ}; generated from `geomlib.presets`)", "",
                 "| setting | this book | the release | why |", "|---|---|---|---|"]
        lines += [f"| `{p}` | {o} | {r} | {w} |" for p, o, r, w in self.rows]
        return "\n".join(lines)

    def summary(self) -> str:
        """One line: how many settings depart, and in which parts of the setup (with counts)."""
        if not self.rows:
            return "every setting as the release"
        counts: dict[str, int] = {}
        for path, *_ in self.rows:
            words = set(re.findall(r"[a-z0-9]+", path.lower().split(":")[-1]))
            part = "model" if words & _MODEL_WORDS else "training" if words & _TRAINING_WORDS else "task"
            counts[part] = counts.get(part, 0) + 1
        differ = f"{len(self.rows)} settings differ" if len(self.rows) > 1 else "1 setting differs"
        budget = sum(w.startswith("budget") for *_, w in self.rows)
        return (f"{differ} ({', '.join(f'{k} {n}' for k, n in counts.items())})"
                + (f", {budget} of them for the CPU budget" if budget else ""))

    def _repr_html_(self) -> str:
        """The book's rendering: the one-line summary, and the full table folded under it (a long
        table must not push the chapter's argument down), fitted to the page's width."""
        e = html.escape
        if not self.rows:
            return f"<p>{e(self._repr_markdown_()).replace('**Setup:**', '<strong>Setup:</strong>')}</p>"
        def text(value: str) -> str:  # escaped, with `code` spans as code
            return re.sub(r"`([^`]+)`", r"<code>\1</code>", e(value))
        body = "".join(f"<tr><td><code>{e(p)}</code></td><td>{text(o)}</td><td>{text(r)}</td><td>{text(w)}</td></tr>"
                       for p, o, r, w in self.rows)
        return (f'<div class="geomlib-setup"><p><strong>Setup vs the authors\' release</strong> (preset '
                f"<code>{e(self.name)}</code>, generated from <code>geomlib.presets</code>): {e(self.summary())}.</p>"
                f"<details><summary>Every departing setting: this book's value, the release's, and why</summary>"
                '<table style="width:100%;table-layout:fixed;font-size:0.85em;overflow-wrap:anywhere">'
                '<colgroup><col style="width:24%"><col style="width:15%"><col style="width:15%">'
                '<col style="width:46%"></colgroup>'
                "<thead><tr><th>setting</th><th>this book</th><th>the release</th><th>why</th></tr></thead>"
                f"<tbody>{body}</tbody></table></details></div>")

    def __str__(self) -> str:
        return self._repr_markdown_()

    def __repr__(self) -> str:
        return self._repr_markdown_()


def table(chapter: str, name: str, preset, release, formats=()) -> SetupTable:
    """Where ``preset`` (preset ``name`` of ``chapter``) departs from ``release``, one row per
    setting: the value here, the release's, and why (a departure without a reason is an error, so
    a new setting cannot enter the book unexplained). A departure shared by several parts of a
    preset is one row; ``formats`` are the chapter's rows that no value holds."""
    groups: dict[tuple, list[str]] = {}
    for path, ours, theirs, why in departures(preset, release):
        if why is None:
            raise KeyError(f"{chapter}: preset {name!r} departs from the release at {path!r} "
                           f"({_fmt(ours)} vs {_fmt(theirs)}) and no spec on its way gives a reason (why=...)")
        head, tail = _split_head(path)
        key = (tail, _fmt(ours), _fmt(theirs), why) if tail else (path, _fmt(ours), _fmt(theirs), why)
        groups.setdefault(key, []).append(head if tail else "")
    rows = [(_join_heads(heads, tail), ours, theirs, why) for (tail, ours, theirs, why), heads in groups.items()]
    return SetupTable(chapter, name, rows + list(formats))


def _split_head(path: str) -> tuple[str, str]:
    """``variants[std 0.002].model.d`` -> ``("variants[std 0.002]", "model.d")``: the first
    component, where a dot inside brackets (a dict key) does not count."""
    depth = 0
    for i, c in enumerate(path):
        depth += (c == "[") - (c == "]")
        if c == "." and depth == 0:
            return path[:i], path[i + 1:]
    return path, ""


def _join_heads(heads: list[str], tail: str) -> str:
    """One row for a departure shared by several parts of a preset: ``run, control: lr`` or, for
    several entries of one dict, ``variants[*]: lr``."""
    if heads == [""]:
        return tail
    if len(heads) == 1:
        return f"{heads[0]}.{tail}"
    prefixes = {h.split("[")[0] for h in heads}
    shown = f"{prefixes.pop()}[*]" if len(prefixes) == 1 and all("[" in h for h in heads) else ", ".join(heads)
    return f"{shown}: {tail}"
