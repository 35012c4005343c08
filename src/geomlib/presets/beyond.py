"""Presets of the chapters beyond the paper: "Scaling" (a phase diagram around the book's recipe)
and "Interventions" (does more geometric memory help where generalisation is fragile?).

Each value that departs from the release (:mod:`geomlib.presets.release`) carries its reason
beside it (``why=``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..specs import EdgeRecipe, PathStarRun, Spec
from . import release
from .pathstar import SCALING_BASE_CPU
from .tiny_graphs import NODE2VEC_CPU, NODE2VEC_PAPER

__all__ = ["Scaling", "Interventions", "PRESETS", "RELEASE", "FORMATS"]


@dataclass(frozen=True)
class Scaling(Spec):
    base: PathStarRun  # the centre cell; one axis changes at a time
    arms: tuple[int, ...]
    lengths: tuple[int, ...]
    sizes: tuple[tuple[int, int], ...]  # (layers, width)
    seeds: int
    size_seeds: int  # seeds of the two model-size cells the claim compares


@dataclass(frozen=True)
class Interventions(Spec):
    variants: dict[str, PathStarRun]  # "plain" and one geometric intervention each
    seeds: int


# Phase diagram: one axis at a time around a centre cell (SCALING_BASE_CPU); the edge stage evaluates
# every 20 steps so that the moment the geometry probe switches on is visible. The model-size claim
# compares two cells of 25 held-out leaves each: one seed moved it by 0.16 between two CPUs, so those
# two cells run 3 seeds and the claim is their mean gain. For a GPU, around the paper's d = 10^4,
# l = 6, 12 x 384 (not run on the CPU machine).
_CPU_SCALE = "CPU scale"
_PAPER_AXES = dict(arms=(500, 2000, 5000, 10_000), lengths=(4, 6, 8, 10), sizes=((4, 256), (8, 384), (12, 384), (12, 768)))


# Headroom as an intervention: where the plain Transformer's generalisation is fragile (d = 50 arms:
# held-out accuracy rises, then collapses into a lookup), does more geometric memory help? The phase
# diagram's recipe at d = 50 (its short edge stage, evaluated every 20 steps). The
# Node2Vec start is the "Spectral bias" chapter's recipe (the same value: a change there recomputes
# these runs).
def _interventions(base: PathStarRun, node2vec: EdgeRecipe) -> dict[str, PathStarRun]:
    return {"plain": base, "self-edges": replace(base, self_edges=True),
            "Node2Vec-initialised embeddings": replace(base, emb_init=node2vec),
            "auxiliary Node2Vec loss": replace(base, aux_node2vec=1.0),
            "small embedding init (std 0.002)": replace(base, model=replace(base.model, emb_init_std=0.002))}


_INTERVENTIONS_BASE_CPU = replace(SCALING_BASE_CPU, d=50,
                                  why=SCALING_BASE_CPU.why | {"d": "the fragile regime at CPU scale: 50 arms"})
_INTERVENTIONS_PAPER = _interventions(replace(release.PATHSTAR, d=1000), NODE2VEC_PAPER)
_NODE2VEC_START_CPU = replace(NODE2VEC_CPU, why=NODE2VEC_CPU.why | {
    "train.steps": "the 'Spectral bias' chapter's cpu recipe (1,500 steps)"})

PRESETS = {
    "scaling": {
        "cpu": Scaling(base=SCALING_BASE_CPU, arms=(25, 50, 100, 200), lengths=(4, 5, 6, 7),
                       sizes=((1, 128), (2, 64), (2, 128), (2, 256)), seeds=1, size_seeds=3,
                       why={"arms": _CPU_SCALE, "lengths": _CPU_SCALE, "sizes": _CPU_SCALE}),
        "paper": Scaling(base=release.PATHSTAR, seeds=3, size_seeds=3, **_PAPER_AXES)},
    "interventions": {
        "cpu": Interventions(variants=_interventions(_INTERVENTIONS_BASE_CPU, _NODE2VEC_START_CPU), seeds=3),
        "paper": Interventions(variants=_INTERVENTIONS_PAPER, seeds=5)},
}
RELEASE = {
    "scaling": Scaling(base=release.PATHSTAR, seeds=3, size_seeds=3, **_PAPER_AXES),
    "interventions": Interventions(variants=_INTERVENTIONS_PAPER, seeds=5),
}
FORMATS: dict = {}
