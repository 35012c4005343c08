"""tools/long_run.py: its run tables, and the shipped long runs they made (data/pathstar_*/)."""
import json
import sys
from dataclasses import replace
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
    tables = {"release": long_run.release_ablation(), "length": long_run.length_runs(), "cascade": long_run.cascade_runs(),
              "length_levers": long_run.length_lever_runs()}
    shipped = [p for family in tables for p in (ROOT / "data").glob(f"pathstar_{family}/*.json")]
    assert shipped
    for path in shipped:
        run = json.loads(path.read_text())
        _, cfg = tables[run["run"]][run["name"]]
        assert run["config"] == plain(cfg), path.name
        assert path.name == f"{long_run._slug(run['name'])}-seed{run['seed']}.json"
        for field in ("command", "commit", "hardware", "torch", "threads", "sessions", "rows", "status"):
            assert run[field], f"{path.name} lacks {field}"


def test_cascade_runs_are_the_recipes_they_name_evaluated_every_20_steps():
    runs = long_run.cascade_runs()
    assert {cfg.l for _, cfg in runs.values()} == {5, 6}
    for _, cfg in runs.values():
        assert cfg.eval_every == long_run.CASCADE_EVERY
        assert {st.train.eval_every for st in cfg.stages} == {long_run.CASCADE_EVERY}
    book, release = runs["the book's recipe"][1], runs["the release recipe"][1]
    assert plain(long_run.every(book, 100)) != plain(book)
    assert book.stages[-1].train.steps == long_run.PATHSTAR_CPU.stages[-1].train.steps
    assert release.stages[0].train.lr == RELEASE_RECIPE["cpu"].stages[0].train.lr


def test_stop_here_ends_an_unfinished_run_with_its_reason(tmp_path, capsys):
    out = tmp_path / "run.json"
    out.write_text(json.dumps({"status": "unfinished (resumable: run the command again to continue)", "steps": 4400}))
    long_run.stop_here(out, json.loads(out.read_text()), "its checkpoint is gone", "python tools/long_run.py x")
    done = json.loads(out.read_text())
    assert done["status"] == "stopped at step 4,400: its checkpoint is gone"
    assert done["stopped"]["reason"] == "its checkpoint is gone" and done["stopped"]["command"]
    long_run.stop_here(out, done, "again", "python tools/long_run.py x")  # a stopped run is left as it is
    assert json.loads(out.read_text())["status"] == done["status"]
    assert "left as it is" in capsys.readouterr().out


def test_stop_here_needs_a_reason():
    import pytest

    with pytest.raises(SystemExit):
        long_run.main(["headline_cpu", "--stop-here", "  "])


def test_bad_seeds_and_caps_are_refused_before_any_work(capsys):
    import pytest

    for argv in (["length_levers", "--seeds", "-1"], ["length_levers", "--cap-steps", "-5"],
                 ["length_levers", "--cap-steps", "0"]):
        with pytest.raises(SystemExit) as e:
            long_run.main(argv)
        assert e.value.code == 2, argv
    err = capsys.readouterr().err
    assert "--seeds" in err and "--cap-steps" in err and "Traceback" not in err


def test_length_levers_change_one_edge_stage_lever_each():
    runs = long_run.length_lever_runs()
    book = runs["edge lr 1e-2, 100 steps"][1]
    assert book.l == 8 and book.d == long_run.PATHSTAR_CPU.d
    assert book.stages[0].train.lr == long_run.PATHSTAR_CPU.stages[0].train.lr
    for name, (what, cfg) in runs.items():
        mixed = replace(cfg.stages[1].train, lr=book.stages[1].train.lr) if "mixed lr" in name else cfg.stages[1].train
        if "frozen" in name:
            assert mixed.freeze_token_embeddings
            mixed = replace(mixed, freeze_token_embeddings=None)
        if "mixed weight decay" in name:
            mixed = replace(mixed, weight_decay=book.stages[1].train.weight_decay)
        assert what.startswith("l = 8:") and mixed == book.stages[1].train, name
        assert float(name.split("lr ")[1].split(",")[0]) == cfg.stages[0].train.lr, name
        assert f"{cfg.stages[0].train.steps} steps" in name, name


def test_recipe_checks_change_the_one_value_they_name():
    runs = long_run.recipe_check_runs()
    book = long_run.PATHSTAR_CPU
    init, longer = runs["token init 0.02"][1], runs["mixed stage 1500 steps"][1]
    assert init.model.emb_init_std == 0.02 and replace(init.model, emb_init_std=book.model.emb_init_std) == book.model
    assert init.stages[0] == book.stages[0] and longer.stages[0] == book.stages[0]
    assert longer.stages[1].train.steps == 1500
    assert replace(longer.stages[1].train, steps=300, eval_every=0) == book.stages[1].train
