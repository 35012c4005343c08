"""Shipped studies are written one way: resumable, every command kept, one provenance block with
the same field names, atomic; and read one way."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from geomlib.studies import Study, command_line, load, table

ROOT = Path(__file__).resolve().parents[1]
PROVENANCE = ("what", "command", "commit", "geomlib", "hardware", "torch", "threads")


def test_a_study_resumes_keeps_its_commands_and_writes_one_provenance_block(tmp_path):
    path = tmp_path / "s.json"
    first = Study(path, "a study", "python x.py --seeds 0", key=lambda r: r["seed"], note="kept")
    first.add({"seed": 0, "value": 1.0})
    doc = json.loads(path.read_text())
    assert all(f in doc for f in PROVENANCE) and doc["note"] == "kept"
    again = Study(path, "a study", "python x.py --seeds 0 1", key=lambda r: r["seed"])
    assert 0 in again and 1 not in again and len(again) == 1  # the finished run is kept, to be skipped
    again.add({"seed": 1, "value": 2.0})
    doc = json.loads(path.read_text())
    assert doc["command"] == "python x.py --seeds 0 && python x.py --seeds 0 1"
    assert [r["seed"] for r in doc["runs"]] == [0, 1]
    again.drop(lambda r: r["seed"] != 0)
    again.save()
    assert [r["seed"] for r in json.loads(path.read_text())["runs"]] == [1]


def test_command_line_quotes_what_a_shell_would_split():
    assert command_line("benchmarks/x.py", ["--only", "a b", "c"]) == "python benchmarks/x.py --only 'a b' c"


def test_a_chapter_reads_a_shipped_study_in_one_call():
    rows = table("knobs_seeds.json", ["variant", "seed", "z"])
    assert rows and all(len(r) == 3 for r in rows)
    assert load("knobs_seeds.json")["what"]
    with pytest.raises(FileNotFoundError, match="no shipped study 'nope.json'"):
        load("nope.json")


def test_the_precision_study_merges_through_the_study(tmp_path):
    parts = []
    for i in range(2):
        p = tmp_path / f"part{i}.json"
        p.write_text(json.dumps({"what": "w", "command": f"python benchmarks/precision.py --seeds {i}",
                                 "runs": [{"key": f"cycle|plain|fp32|linear net|{i}", "seed": i}]}))
        parts.append(p)
    out = tmp_path / "out.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "precision.py"), "--out", str(out),
                           "--merge", *map(str, parts)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert [r["seed"] for r in doc["runs"]] == [0, 1] and all(f in doc for f in PROVENANCE)
    assert "--seeds 0" in doc["command"] and "--seeds 1" in doc["command"]


def test_no_tool_or_benchmark_writes_provenance_fields_by_hand():
    """The provenance block comes from geomlib.studies; a script that builds it itself drifts
    (another name for the machine, no commit)."""
    hand = re.compile(r"\"(hardware|commit|cpu|library)\": *(hardware|git_commit|library_fingerprint)\(")
    offenders = [str(p.relative_to(ROOT)) for folder in ("benchmarks", "tools", "src/geomlib")
                 for p in (ROOT / folder).rglob("*.py")
                  if p.name not in ("studies.py", "checkpoints.py") and hand.search(p.read_text())]  # checkpoints: a session
    assert not offenders, f"provenance written by hand in {offenders}; use geomlib.studies.provenance / machine"


def test_group_index_and_history_read_runs_without_parsing_in_a_chapter():
    from geomlib.studies import group, history, index, load_all

    rows = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 1, "b": "z"}]
    assert list(group(rows, "a")) == [1, 2] and len(group(rows, "a")[1]) == 2
    assert set(group({"runs": rows}, "a", "b")) == {(1, "x"), (2, "y"), (1, "z")}
    with pytest.raises(ValueError, match="2 runs share {'a': 1}"):
        index(rows, "a")
    runs = index(load_all("pathstar_release"), "name", "seed")
    h = history(runs["release", 0])
    assert h.first_step("probe", 0.9) is not None and h.last["step"] == runs["release", 0]["rows"][-1]["step"]


def test_claim_over_seeds_reads_one_claim_of_a_robustness_document_by_seed():
    from geomlib.studies import claim_over_seeds, load

    def run(seed, series, value):
        return {"seed": seed, "series": series, "hardware": "cpu X", "precision": "bf16",
                "claims": {"a.b": {"measured": value, "precision": "fp32"}, "a.c": {"measured": -1.0}}}
    doc = {"runs": {"a|default|1": run(1, "default", 0.5), "a|default|0": run(0, "default", 0.25),
                    "a|fp32|0": run(0, "fp32", 0.75)}}
    assert claim_over_seeds(doc, "a.b") == [{"seed": 0, "measured": 0.25, "hardware": "cpu X", "precision": "fp32"},
                                            {"seed": 1, "measured": 0.5, "hardware": "cpu X", "precision": "fp32"}]
    assert [r["measured"] for r in claim_over_seeds(doc, "a.b", series="fp32")] == [0.75]
    assert claim_over_seeds(None, "a.b") == [] and claim_over_seeds(doc, "z.z") == []
    former = claim_over_seeds(load("former_edge_stage.json"), "scaling.bigger_models")  # shipped
    assert [r["seed"] for r in former] == [0, 1, 2, 3, 4]


def test_no_chapter_parses_a_shipped_file_itself():
    import json as _json
    offenders = []
    for nb in sorted((ROOT / "book").glob("*.ipynb")):
        code = "\n".join("".join(c["source"]) for c in _json.loads(nb.read_text())["cells"] if c["cell_type"] == "code")
        if re.search(r"json\.loads?\(|read_text\(|shipped_data|shipped_files|import json", code):
            offenders.append(nb.name)
    assert not offenders, f"chapters that parse shipped JSON themselves (use geomlib.studies): {offenders}"


def test_a_truncated_shipped_study_names_its_file(tmp_path):
    from geomlib.studies import DamagedStudy, load

    path = tmp_path / "study.json"
    path.write_text('{"rows": [1, 2')
    with pytest.raises(DamagedStudy, match=f"{path}: the shipped study cannot be read.*git checkout -- study.json"):
        load(path)
