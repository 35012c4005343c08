"""The interface a chapter notebook talks to: its name and parameters, checked before any work
starts; its preset and setup table; the numbers its prose quotes; its claims and verdict box.
"""
from __future__ import annotations

from .claims import CHECKS, check_claim
from .ledger import ClaimResult
from .precision import check_environment, reset_used
from .report import Verdict, verdict

__all__ = ["Chapter", "CHAPTER_PARAMETERS", "injected_parameters"]


class _Text(str):
    """A text glued into prose without quotes (its repr is itself)."""

    def __repr__(self) -> str:
        return str(self)


CHAPTER_PARAMETERS = ("preset", "seed")  # what a chapter's `parameters` cell declares


def injected_parameters() -> set[str] | None:
    """The names papermill injected into this kernel (its ``# Parameters`` cell, read from the
    IPython history); None outside IPython or when nothing was injected."""
    import ast

    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with Jupyter
        return None
    shell = get_ipython()
    if shell is None:
        return None
    names = None
    for source in shell.user_ns.get("In", []):
        if source.lstrip().startswith("# Parameters"):
            try:
                tree = ast.parse(source)
            except SyntaxError:
                continue
            names = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                     if isinstance(t, ast.Name)}
    return names


class Chapter:
    """One chapter of the book: its name and parameters, checked before any work starts, and the
    interface through which it records its claims and shows its verdict box.

        ch = Chapter("path_finding_from_memory", preset, seed)
        cfg = ch.config                    # the chapter's typed preset (geomlib.presets)
        ch.setup_table()                   # where that preset departs from the authors' release
        ch.check("path_finding_from_memory.heldout_full_path", value, paper=..., description=...)
        ch.verdict()

    A parameter papermill injected that the chapter does not declare (``-p sead 1``) is an error
    that names it, not a run with the default seed."""

    def __init__(self, name: str, preset: str = "cpu", seed: int = 0):
        from .presets import preset_names
        from .validate import check_seed

        unknown = (injected_parameters() or set()) - set(CHAPTER_PARAMETERS)
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)} given to chapter {name!r}; "
                             f"a chapter takes {', '.join(CHAPTER_PARAMETERS)} (e.g. papermill -p seed 1)")
        if preset not in preset_names():
            raise ValueError(f"preset {preset!r} is not a preset; choose from {preset_names()}")
        check_environment()  # a bad $GEOMLIB_PRECISION is refused here, before any training
        self.name, self.preset, self.seed = name, preset, check_seed(seed)
        reset_used()  # the ledger rows name the precisions of this chapter's runs only

    @property
    def config(self):
        """This chapter's preset (a copy): ``get_preset(name, preset)``."""
        from .presets import get_preset

        return get_preset(self.name, self.preset)

    def setup_table(self):
        """The table of every setting where this chapter's preset departs from the authors'
        release, with the release's value and the reason (generated from the preset)."""
        from .presets import setup_table

        return setup_table(self.name, self.preset)

    @staticmethod
    def glue(name: str, value) -> None:
        """Make ``value`` (a number or a text) quotable in the chapter's prose as
        ``{glue:}`name``` (numbers also ``{glue:text}`name:.2f```): the prose quotes this run,
        never a retyped number. Needs myst-nb (the book build); elsewhere, e.g. in Colab, nothing
        is stored and the prose shows the name."""
        try:
            from myst_nb import glue
        except ImportError:
            return
        glue(name, _Text(value) if isinstance(value, str) else value, display=False)

    def check(self, claim: str, measured: float, *, threshold: float | None = None, **kwargs) -> ClaimResult:
        """:func:`~geomlib.claims.check_claim` with this chapter's name, preset and seed, and the
        claim's rule from ``geomlib.claims.CHECKS`` (written there once, beside its negative
        case). ``threshold``: only for a claim whose rule is computed from the run (CHECKS names it in
        words, e.g. ``"chance 1/d + 0.1"``)."""
        op, rule = CHECKS.get(claim, (">=", 0.0))  # a claim not in CHECKS: check_claim refuses it, saying what to do
        if isinstance(rule, str) and threshold is None:
            raise ValueError(f"claim {claim!r}: its threshold is computed ({rule}); pass it as threshold=")
        if not isinstance(rule, str) and threshold is not None:
            raise ValueError(f"claim {claim!r}: its threshold is CHECKS' {rule}; pass none (change it there)")
        return check_claim(claim, measured, op, rule if threshold is None else threshold, chapter=self.name,
                           preset=self.preset, seed=self.seed, **kwargs)

    def verdict(self) -> Verdict:
        """This chapter's verdict box."""
        return verdict(self.name)
