"""Typed presets, one per chapter, named after the chapter's notebook.

Every chapter has two presets: ``cpu`` (the default: what CI runs and the book shows) and
``paper`` (the authors' scale, for a GPU). A preset is a small frozen dataclass of literal values
(:mod:`geomlib.specs`); a variant is made with ``dataclasses.replace``, which checks every value::

    from dataclasses import replace
    from geomlib import get_preset

    cfg = get_preset("path_finding_from_memory")               # a PathFindingFromMemory
    run = replace(cfg.run, d=200)                               # a PathStarRun with 200 arms

Where the presets live, one module per family of chapters, each reason beside its value:

- :mod:`geomlib.presets.pathstar`: the path-star chapters and the book's path-star recipes
  (``PATHSTAR_CPU``, the run of three chapters; ``PATHSTAR_L5_CPU``, the former l = 5 recipe);
- :mod:`geomlib.presets.tiny_graphs`: the tiny-graph chapters;
- :mod:`geomlib.presets.beyond`: the phase diagram and the interventions;
- :mod:`geomlib.presets.release`: what the authors' release runs, stated once;
- :mod:`geomlib.presets.departures`: the setup-vs-release table, computed from the two.

:func:`setup_table` renders a preset's departures from the release (``RELEASE``), value by value,
each with the reason written beside the value; a test requires a reason for every departure.
:func:`is_release` says whether a preset is the release's recipe.
"""
from __future__ import annotations

import copy
from typing import Any

from ..specs import (
    GPT,
    EdgeRecipe,
    InContextRun,
    Linear,
    Mamba,
    Node2Vec,
    PathStarRun,
    Stage,
    TrainConfig,
    plain,
)
from . import beyond, pathstar, tiny_graphs
from .beyond import Interventions, Scaling
from .departures import Departure, SetupTable, departures, table
from .pathstar import PATHSTAR_CPU, PATHSTAR_L5_CPU, PATHSTAR_L6_CPU, RELEASE_RECIPE
from .tiny_graphs import ASSOCIATIVE_CONTROL, TINY_TRANSFORMER

__all__ = ["PRESETS", "RELEASE", "FORMATS", "get_preset", "preset_names", "setup_table", "is_release", "departures",
           "Departure", "SetupTable", "plain", "GPT", "Mamba", "Linear", "Node2Vec", "EdgeRecipe",
           "Stage", "PathStarRun", "InContextRun", "TrainConfig", "Scaling", "Interventions", "RELEASE_RECIPE",
           "PATHSTAR_CPU", "PATHSTAR_L5_CPU", "PATHSTAR_L6_CPU", "TINY_TRANSFORMER", "ASSOCIATIVE_CONTROL"]

_FAMILIES = (pathstar, tiny_graphs, beyond)
#: ``{chapter: {"cpu": preset, "paper": preset}}``
PRESETS: dict[str, dict[str, Any]] = {ch: p for family in _FAMILIES for ch, p in family.PRESETS.items()}
#: ``{chapter: what the authors' release runs for it}`` (the same type as the chapter's presets)
RELEASE: dict[str, Any] = {ch: r for family in _FAMILIES for ch, r in family.RELEASE.items()}
#: ``{chapter: [(setting, this book, the release, why), ...]}``: departures no preset value holds
FORMATS: dict[str, list[tuple[str, str, str, str]]] = {ch: f for family in _FAMILIES for ch, f in family.FORMATS.items()}
assert set(PRESETS) == set(RELEASE) and set(FORMATS) <= set(PRESETS)


def _check_chapter(chapter: str) -> None:
    if chapter not in PRESETS:
        raise KeyError(f"unknown chapter {chapter!r}; chapters with presets: {sorted(PRESETS)}")


def get_preset(chapter: str, name: str = "cpu"):
    """Preset ``name`` (``"cpu"`` or ``"paper"``) of ``chapter`` (a notebook's name); a copy, so a
    chapter cannot change another's values. Make variants with ``dataclasses.replace``."""
    _check_chapter(chapter)
    if name not in PRESETS[chapter]:
        raise ValueError(f"unknown preset {name!r} for {chapter!r}; choose from {sorted(PRESETS[chapter])}")
    return copy.deepcopy(PRESETS[chapter][name])


def preset_names() -> list[str]:
    """The preset names every chapter offers (what a chapter's ``preset`` parameter may be)."""
    names = None
    for presets in PRESETS.values():
        names = set(presets) if names is None else names & set(presets)
    return sorted(names or ())


def setup_table(chapter: str, name: str = "cpu") -> SetupTable:
    """Where preset ``name`` of ``chapter`` departs from the authors' release, one row per setting:
    the value here, the release's, and the reason given beside the value."""
    _check_chapter(chapter)
    return table(chapter, name, PRESETS[chapter][name], RELEASE[chapter], FORMATS.get(chapter, ()))


def is_release(chapter: str, name: str = "paper") -> bool:
    """Whether preset ``name`` of ``chapter`` is the release's recipe: every value as the release's
    (bookkeeping such as evaluation cadence and seeds aside)."""
    _check_chapter(chapter)
    return not departures(PRESETS[chapter][name], RELEASE[chapter])
