"""Shipped studies: the JSON files in ``data/`` that benchmarks, tools and sweeps write and that
chapters read.

A study is a file of *runs*, each a row with a key, under one provenance block with the same
field names everywhere::

    {"what": ..., "command": "python ... && python ...", "commit": ..., "geomlib": ...,
     "hardware": ..., "torch": ..., "threads": ..., <the study's own fields>, "runs": [...]}

:class:`Study` is the one way to write one: it resumes (a run whose key is already in the file is
skipped by the caller through ``key in study``), records every command that added runs, and
writes atomically after each run, so an interrupted study loses at most the run in progress.
:func:`load`, :func:`load_all`, :func:`group`, :func:`table`, :func:`origin` and :func:`history` are
the one way a chapter reads one: no chapter parses a shipped file itself.
"""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any, Callable

from .fileio import write_json_atomic

__all__ = ["Study", "machine", "provenance", "command_line", "load", "load_all", "origin", "group", "index",
           "claim_over_seeds",
           "table", "history"]


def command_line(script: str, argv: list[str] | None = None) -> str:
    """``python <script> <args>``: the command that reproduces this run (``argv``: the arguments
    given to ``main``; None: the process's own)."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python", script, *(shlex.quote(str(a)) for a in args)])


def machine() -> dict:
    """Which code ran where: the commit, the fingerprint of the code that changes numbers, the
    machine (``hardware``: the GPU's or CPU's model name), torch and its threads. Every run row of a
    shipped study that records its own origin uses these names."""
    import torch

    from .provenance import git_commit, hardware, library_fingerprint

    return {"commit": git_commit(), "geomlib": library_fingerprint(), "hardware": hardware(),
            "torch": str(torch.__version__), "threads": torch.get_num_threads()}


def provenance(what: str, command: str | list[str], **extra: Any) -> dict:
    """The provenance block every shipped study carries: what it is, the command(s) that made it
    (joined by `` && ``), and :func:`machine`; then ``extra`` (which may override a field)."""
    commands = [command] if isinstance(command, str) else list(command)
    return {"what": what, "command": " && ".join(commands), **machine(), **extra}


class Study:
    """A resumable study written to ``path``: its runs keyed by ``key(row)``; the rows already in
    the file are kept, and a new command is added to the file's ``command``::

        study = Study(path, "what it measures", command_line("benchmarks/x.py", argv), key=lambda r: r["key"])
        for cell in cells:
            if cell in study:
                continue
            study.add(measure(cell))          # written at once, atomically
    """

    def __init__(self, path: Path | str, what: str, command: str, *, key: Callable[[dict], Any] = lambda r: r["key"],
                 order: Callable[[dict], Any] | None = None, **fields: Any):
        self.path, self.what, self.key, self.fields = Path(path), what, key, fields
        self.order = order or key
        doc = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.runs = {key(r): r for r in doc.get("runs", [])}
        self.commands = [c for c in doc.get("command", "").split(" && ") if c]
        if command not in self.commands:
            self.commands.append(command)

    def __contains__(self, key) -> bool:
        return key in self.runs

    def __len__(self) -> int:
        return len(self.runs)

    def add(self, row: dict, save: bool = True) -> dict:
        """Record ``row`` (replacing a run with the same key) and write the study."""
        self.runs[self.key(row)] = row
        if save:
            self.save()
        return row

    def drop(self, keep: Callable[[dict], bool]) -> None:
        """Forget the runs ``keep`` rejects (e.g. those a re-run replaces); written on the next save."""
        self.runs = {k: r for k, r in self.runs.items() if keep(r)}

    def save(self, **fields: Any) -> None:
        """Write the study atomically: the provenance block, the study's fields, the runs in order."""
        self.fields.update(fields)
        write_json_atomic(self.path, {**provenance(self.what, self.commands, **self.fields),
                                      "runs": sorted(self.runs.values(), key=self.order)})


def load(name: str | Path, optional: bool = False) -> dict | None:
    """A shipped study (``"knobs_seeds.json"`` in ``data/``, or a path): the whole document. A
    missing study is a ``FileNotFoundError`` that names where it was looked for, or None when
    ``optional`` (a chapter then says the study is not shipped with this install)."""
    from .cache import shipped_data

    path = name if isinstance(name, Path) else shipped_data(name)
    if path is None or not path.exists():
        if optional:
            return None
        raise FileNotFoundError(f"no shipped study {str(name)!r} (looked in the package's data/ and the repository's "
                                "data/); its command is in the README's table of shipped results")
    return read_shipped(Path(path))


class DamagedStudy(ValueError):
    """A shipped study that cannot be read (truncated, not JSON): the message names the file."""


def read_shipped(path: Path) -> dict:
    """One shipped JSON file; an unreadable one raises :class:`DamagedStudy` naming it and the cure."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise DamagedStudy(f"{path}: the shipped study cannot be read ({type(err).__name__}: {err}); restore it "
                           f"with `git checkout -- {Path(path).name}` in its folder, or rerun the command that made "
                           "it (the README's table of shipped results)") from None


def load_all(folder: str) -> list[dict]:
    """Every shipped run in ``data/<folder>/`` (one JSON each, e.g. the long runs), sorted by file
    name; empty when the folder is not shipped."""
    from .cache import shipped_files

    return [read_shipped(p) for p in shipped_files(folder)]


def origin(doc: dict) -> str:
    """Where a shipped study comes from, in one line: machine, torch, commit and command."""
    return (f"{doc.get('hardware', '?')}, torch {doc.get('torch', '?')}, commit {str(doc.get('commit', '?'))[:10]}: "
            f"`{doc.get('command', '?')}`")


def group(doc: dict | list[dict], *fields: str, where: Callable[[dict], bool] | None = None) -> dict[Any, list[dict]]:
    """A study's runs (or any rows) grouped by ``fields``, in the order they first appear: a key is
    the field's value, or the tuple of values for several fields."""
    rows = doc.get("runs", []) if isinstance(doc, dict) else doc
    out: dict[Any, list[dict]] = {}
    for r in rows:
        if where is None or where(r):
            key = tuple(r.get(f) for f in fields)
            out.setdefault(key[0] if len(fields) == 1 else key, []).append(r)
    return out


def index(doc: dict | list[dict], *fields: str) -> dict[Any, dict]:
    """A study's runs (or shipped run documents) by ``fields``, one run per key (a duplicate key
    is an error that names it): ``index(load_all("pathstar_release"), "name", "seed")``."""
    out: dict[Any, dict] = {}
    for key, rows in group(doc, *fields).items():
        if len(rows) > 1:
            raise ValueError(f"{len(rows)} runs share {dict(zip(fields, key if len(fields) > 1 else (key,)))}")
        out[key] = rows[0]
    return out


def claim_over_seeds(doc: dict | None, claim: str, series: str = "default") -> list[dict]:
    """One claim's runs in a document of ``data/robustness.json``'s form (its ``runs``: one chapter
    run per seed and series), by seed: ``{seed, measured, hardware, precision}`` each; empty when
    ``doc`` is None (not shipped) or holds no such run."""
    out = [{"seed": r["seed"], "measured": r["claims"][claim]["measured"], "hardware": r["hardware"],
            "precision": r["claims"][claim].get("precision", r["precision"])}
           for r in (doc or {}).get("runs", {}).values() if r["series"] == series and claim in r["claims"]]
    return sorted(out, key=lambda r: r["seed"])


def table(name: str | Path, columns: list[str], where: Callable[[dict], bool] | None = None) -> list[list]:
    """The runs of a shipped study as rows of ``columns`` (a missing field is None), optionally
    filtered by ``where``: what a chapter shows as a table, in one call."""
    return [[r.get(c) for c in columns] for r in load(name).get("runs", []) if where is None or where(r)]


def history(doc: dict):
    """A shipped long run's curve (its ``rows``) as a :class:`geomlib.train.History`: its
    ``first_step``, ``last`` and columns, as for a run trained in the chapter."""
    from .train import History

    return History(rows=doc["rows"])
