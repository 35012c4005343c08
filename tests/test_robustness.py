"""data/robustness.json (``make robustness``): fresh for today's presets, and summarised right."""
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import robustness  # noqa: E402

from geomlib.robustness import load as load_robustness  # noqa: E402
from geomlib.robustness import seeds_text  # noqa: E402

DATA = ROOT / "data" / "robustness.json"


def test_robustness_data_is_not_stale():
    if not DATA.exists():
        pytest.skip("no data/robustness.json shipped yet (make robustness)")
    runs = json.loads(DATA.read_text())["runs"]
    stale = sorted({r["chapter"] for r in runs.values()
                    if r["preset_hash"] != robustness.preset_hash(r["chapter"], r["preset"])})
    assert not stale, (f"data/robustness.json is stale: the presets of {stale} changed since it was measured; "
                       f"refresh it with `{robustness.COMMAND}` (resumable; reruns only those chapters)")


def test_every_run_records_its_provenance():
    if not DATA.exists():
        pytest.skip("no data/robustness.json shipped yet (make robustness)")
    for key, run in json.loads(DATA.read_text())["runs"].items():
        for field in ("seed", "series", "precision", "device", "preset", "preset_hash", "geomlib", "torch", "hardware",
                      "threads", "claims"):
            assert field in run, f"{key} lacks {field}"
        assert key == f"{run['chapter']}|{run['series']}|{run['seed']}"
        for cid, c in run["claims"].items():
            assert c["precision"] and c["device"], f"{key}: {cid} names no precision or device"


def test_every_run_is_labelled_with_a_precision_its_presets_can_give():
    """A forced-fp32 run computes in fp32 only; a default run in what its chapter's presets resolve to
    on a machine with or without native bf16 (a bf16 run labelled fp32, or the reverse, fails here)."""
    if not DATA.exists():
        pytest.skip("no data/robustness.json shipped yet (make robustness)")
    for key, run in json.loads(DATA.read_text())["runs"].items():
        possible = {robustness.expected_precision(run["chapter"], run["series"], native) for native in (True, False)}
        assert run["precision"] in possible, f"{key} says {run['precision']!r}; its presets give {possible}"
        assert {c["precision"] for c in run["claims"].values()} <= {run["precision"]}


def _headline_run(seed: int, series: str, value: float) -> dict:
    """One recorded robustness run of the headline claim (bf16 by default, forced fp32 otherwise)."""
    return {"chapter": "path_finding_from_memory", "seed": seed, "series": series,
            "claims": {"path_finding_from_memory.heldout_full_path": {"measured": value, "op": ">=", "threshold": 0.9, "status": "x",
                                                      "precision": "bf16" if series == "default" else "fp32"}}}


def test_summary_and_pass_rates(tmp_path):
    runs = {f"{s}{p}": _headline_run(s, p, v) for s, p, v in [(0, "default", 0.99), (1, "default", 0.95), (2, "default", 0.3),
                                                     (0, "fp32", 0.97)]}
    summary = robustness.summarise(runs)["path_finding_from_memory.heldout_full_path"]
    assert (summary["min"], summary["median"], summary["max"]) == (0.3, 0.95, 0.99)
    path = tmp_path / "robustness.json"
    path.write_text(json.dumps({"claims": {"path_finding_from_memory.heldout_full_path": summary}}))
    loaded = load_robustness(path)["path_finding_from_memory.heldout_full_path"]  # statuses judged by today's CHECKS
    assert loaded["passed"] == 2 and seeds_text(loaded) == "2/3 seeds in bf16 (0.3 to 0.99); fp32 ✓"
    assert seeds_text(None) == "not run"


def test_preset_hash_covers_values_shared_between_chapters():
    """The interventions' Node2Vec start is the spectral-bias chapter's recipe: a change there
    changes the interventions' hash (the value is part of the interventions preset)."""
    from dataclasses import replace

    from geomlib import presets

    before = robustness.preset_hash("interventions")
    spectral = presets.PRESETS["spectral_bias"]["cpu"]
    variants = presets.PRESETS["interventions"]["cpu"].variants
    assert variants["Node2Vec-initialised embeddings"].emb_init == spectral.recipe
    changed = replace(variants["Node2Vec-initialised embeddings"],
                      emb_init=replace(spectral.recipe, train=replace(spectral.recipe.train, lr=0.5)))
    old = presets.PRESETS["interventions"]["cpu"]
    presets.PRESETS["interventions"]["cpu"] = replace(old, variants={**variants, "Node2Vec-initialised embeddings": changed})
    try:
        assert robustness.preset_hash("interventions") != before
    finally:
        presets.PRESETS["interventions"]["cpu"] = old


def test_several_forced_fp32_seeds_show_their_passes_and_range(tmp_path):
    runs = {f"{s}{p}": _headline_run(s, p, v) for s, p, v in [(0, "default", 0.99), (1, "default", 0.95), (0, "fp32", 0.97),
                                                     (1, "fp32", 0.93), (2, "fp32", 0.5)]}
    path = tmp_path / "robustness.json"
    path.write_text(json.dumps({"claims": robustness.summarise(runs)}))
    loaded = load_robustness(path)["path_finding_from_memory.heldout_full_path"]
    assert seeds_text(loaded) == "2/2 seeds in bf16 (0.95 to 0.99); fp32 2/3 (0.5 to 0.97)"


def test_a_damaged_robustness_file_fails_naming_it(tmp_path):
    """A truncated series must not render as every claim 'not run': it fails, naming the file and the cure."""
    from geomlib.robustness import DamagedRobustness

    path = tmp_path / "robustness.json"
    path.write_text('{"claims": {"x.a": {"runs": [')
    with pytest.raises(DamagedRobustness, match=f"{path}.*git checkout -- data/robustness.json"):
        load_robustness(path)
    path.write_text("[1, 2]")
    with pytest.raises(DamagedRobustness, match="not a robustness series"):
        load_robustness(path)


def test_a_crashed_chapter_run_is_recorded_as_failed_retried_and_counted(tmp_path, monkeypatch):
    """A chapter run that fails is recorded with the runner's own error line (the cell and the
    exception), makes the tool exit non-zero, is run again next time (not 'already recorded'), and
    every claim it did not reach counts against that claim's pass rate."""
    chapter = "hardest_token"
    claim = next(c for c in robustness.CHECKS if c.startswith(chapter + "."))
    calls = []

    def fake(ch, seed, series, build, preset):
        calls.append(seed)
        if seed == 1:
            return {}, 1.0, "FAILED chapter 'hardest_token', cell 7, line x = 1 / 0: error: ZeroDivisionError: division by zero"
        return {claim: {"chapter": ch, "measured": 0.99, "op": ">=", "threshold": 0.9, "status": "pass",
                        "precision": "fp32", "device": "cpu"}}, 1.0, ""

    monkeypatch.setattr(robustness, "run_chapter", fake)
    monkeypatch.delenv("GEOMLIB_PRECISION", raising=False)
    out = tmp_path / "robustness.json"
    args = ["--only", chapter, "--seeds", "0", "1", "--fp32-seeds", "--out", str(out), "--build", str(tmp_path / "b")]
    assert robustness.main(args) == 1
    data = json.loads(out.read_text())
    assert data["runs"][f"{chapter}|default|1"]["error"].startswith("FAILED chapter 'hardest_token', cell 7")
    entry = data["claims"][claim]
    assert entry["pass_rate"] == "1/2" and entry["crashed"] == [1]
    out_text = seeds_text(load_robustness(out)[claim])
    assert out_text.startswith("1/2 seeds") and "seed 1 crashed" in out_text
    calls.clear()
    assert robustness.main(args) == 1 and calls == [1]  # the failed seed is retried, the recorded one is not
