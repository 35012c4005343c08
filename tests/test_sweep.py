"""The sweep runner: a tiny phase diagram through submitit's local executor, end to end."""
import json
from dataclasses import replace

import pytest

from geomlib.presets import GPT, get_preset
from geomlib.sweep import main, phase_diagram_cells, run_sweep

pytest.importorskip("submitit")


def _tiny_cells() -> dict:
    base = get_preset("scaling").base
    edges, mixed = base.stages
    base = replace(base, d=4, l=3, model=GPT(n_layer=1, n_head=1, n_embd=16), eval_every=5,
                   stages=(replace(edges, train=replace(edges.train, steps=5, eval_every=5)),
                           replace(mixed, train=replace(mixed.train, steps=5), batch=16)))
    return {("arms d", 4): base, ("arms d", 6): replace(base, d=6)}


def test_a_tiny_sweep_runs_locally_and_never_recomputes_a_finished_cell(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GEOMLIB_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "sweep"
    doc = run_sweep(_tiny_cells(), [0, 1], out, executor="local", parallel=2, timeout_min=5, command="test")
    assert doc["finished"] == doc["cells"] == 4
    assert {(r["value"], r["seed"]) for r in doc["rows"]} == {(4, 0), (4, 1), (6, 0), (6, 1)}
    assert all(0.0 <= r["heldout_full_path"] <= 1.0 and r["d"] == r["value"] for r in doc["rows"])
    assert json.loads((out / "scaling.json").read_text())["rows"] == doc["rows"]
    stamps = {p: p.stat().st_mtime_ns for p in (out / "cells").iterdir()}
    capsys.readouterr()
    run_sweep(_tiny_cells(), [0, 1], out, executor="local", timeout_min=5)
    assert "0 to run" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in (out / "cells").iterdir()} == stamps


def test_the_phase_diagram_cells_are_one_axis_at_a_time():
    cfg = get_preset("scaling")
    cells = phase_diagram_cells(cfg)
    assert len(cells) == len(cfg.arms) + len(cfg.lengths) + len(cfg.sizes)
    assert cells["arms d", 25].d == 25 and cells["arms d", 25].l == cfg.base.l
    assert cells["model (layers x width)", "2x256"].model.n_embd == 256


def test_bad_sweep_arguments_are_refused_before_any_job(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--preset", "gpu"]) == 2
    assert main(["--out", str(tmp_path), "--seeds", "-1"]) == 2
    assert main(["--out", str(tmp_path), "--slurm", "oops"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert not (tmp_path / "cells").exists()
    with pytest.raises(ValueError, match="executor"):
        run_sweep({}, [0], tmp_path, executor="cloud")
