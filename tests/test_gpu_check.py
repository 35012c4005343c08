"""tools/gpu_check.py: the prepared GPU check runs end to end at toy size on the CPU (--dry-run)."""
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import gpu_check  # noqa: E402


def test_the_gpu_check_runs_dry_on_the_cpu_and_writes_one_json_per_part(tmp_path, monkeypatch):
    monkeypatch.setenv("GEOMLIB_PROGRESS", "0")
    before = os.environ.get("GEOMLIB_CACHE")
    assert gpu_check.main(["--dry-run", "--out", str(tmp_path / "out")]) == 0
    assert os.environ.get("GEOMLIB_CACHE") == before  # the check leaves the chapters' cache setting alone
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parts"]["environment"] == summary["parts"]["resume"] == summary["parts"]["paper_step"] == "done"
    assert {f"chapter-{c}" for c in gpu_check.CHAPTERS} <= set(summary["parts"])
    env = json.loads((out / "environment.json").read_text())
    assert env["device"] == "cpu" and env["auto_precision"] in ("fp32", "bf16") and env["commit"]
    resume = json.loads((out / "resume.json").read_text())
    assert resume["same_curve"] and resume["same_weights"] and len(resume["sessions"]) == 2
    # run again into the same folder: the resume check runs again (a stopped session, then a resumed one),
    # not read back from the first run's cache
    import time
    second = time.time()
    assert gpu_check.main(["--dry-run", "--out", str(out), "--only", "linear_net"]) == 0
    again = json.loads((out / "resume.json").read_text())
    assert again["status"] == "done" and len(again["sessions"]) == 2 and again["sessions"][1]["from_step"] > 0
    written = [f.stat().st_mtime for f in (out / "cache").rglob("*") if f.is_file()]
    assert written and min(written) >= second  # every cached run of the check is this run's
    step = json.loads((out / "paper_step.json").read_text())
    assert step["d"] == 10_000 and step["l"] == 6 and step["steps_per_s"] > 0


def test_a_bad_precision_setting_is_refused_before_any_part(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GEOMLIB_PRECISION", "x")
    assert gpu_check.main(["--dry-run", "--out", str(tmp_path / "o")]) == 2
    assert "GEOMLIB_PRECISION" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_bad_gpu_check_arguments_are_refused(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert gpu_check.main(["--out", str(tmp_path / "f")]) == 2
    assert gpu_check.main(["--out", str(tmp_path / "o"), "--only", "nope"]) == 2
    assert "is a file" in capsys.readouterr().err and not (tmp_path / "o").exists()
