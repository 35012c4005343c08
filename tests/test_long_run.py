"""tools/long_run.py: its run tables, and the shipped long runs they made (data/pathstar_*/)."""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import long_run  # noqa: E402

from geomlib.presets import RELEASE_RECIPE, plain  # noqa: E402


def test_release_length_in_steps_is_the_release_recipe():
    rel = RELEASE_RECIPE["cpu"]
    assert long_run.release_steps(rel.d, rel.l, rel.stages[0].batch) == rel.stages[0].train.steps == 21_400


def test_length_runs_are_at_the_lengths_they_name():
    for name, (what, cfg) in long_run.length_runs().items():
        assert name.startswith(f"l{cfg.l}:") and what.startswith(f"l = {cfg.l}:"), name
        assert cfg.stop_at in (long_run.SWITCH, None)


def test_every_shipped_long_run_is_a_run_of_todays_tables():
    """A shipped curve is the run its name says: same configuration as the table has today (a
    changed recipe must be rerun, not silently relabelled), with its provenance."""
    tables = {"release": long_run.release_ablation(), "length": long_run.length_runs()}
    shipped = list((ROOT / "data").glob("pathstar_release/*.json")) + list((ROOT / "data").glob("pathstar_length/*.json"))
    assert shipped
    for path in shipped:
        run = json.loads(path.read_text())
        _, cfg = tables[run["run"]][run["name"]]
        assert run["config"] == plain(cfg), path.name
        assert path.name == f"{long_run._slug(run['name'])}-seed{run['seed']}.json"
        for field in ("command", "commit", "hardware", "torch", "threads", "sessions", "rows", "status"):
            assert run[field], f"{path.name} lacks {field}"
