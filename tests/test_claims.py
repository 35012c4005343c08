import json

import pytest

from geomlib.claims import ClaimFailed, check_claim
from geomlib.fileio import write_json_atomic
from geomlib.ledger import read_ledger
from geomlib.report import chapter_status, report_markdown, verdict

COMMON = dict(paper="p", description="d", chapter="ch", preset="cpu", seed=0)


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    """The made-up claims of these tests, entered in CHECKS as a chapter's claims are."""
    from geomlib import claims
    for cid, op, thr in [("x.a", ">=", 0.9), ("x.b", "<=", 0.2), ("x.c", ">=", 0.9), ("x.nan", ">=", 0.9),
                         ("x.d", ">=", 0.9), ("x.e", ">=", 1), ("x.f", ">=", 0.9), ("y.a", ">=", 0.9), ("x.t", ">=", 0.5)]:
        monkeypatch.setitem(claims.CHECKS, cid, (op, thr))


def test_claim_passes_and_round_trips(tmp_path, monkeypatch):
    monkeypatch.setenv("GEOMLIB_LEDGER", str(tmp_path / "ledger.json"))
    r = check_claim("x.a", 0.95, ">=", 0.9, **COMMON)
    assert r.passed and r.status == "pass"
    check_claim("x.b", 0.1, "<=", 0.2, **COMMON, details={"n": 3})
    led = read_ledger()
    assert set(led) == {"x.a", "x.b"} and led["x.a"]["measured"] == 0.95 and led["x.b"]["details"] == {"n": 3}
    for k in ("threshold", "paper", "preset", "seed", "torch", "threads", "wall_seconds"):
        assert k in led["x.a"]
    assert "2 of 2 claims pass" in report_markdown(led)


def test_claim_can_fail_and_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("GEOMLIB_LEDGER", str(tmp_path / "ledger.json"))
    with pytest.raises(ClaimFailed, match="x.c"):
        check_claim("x.c", 0.5, ">=", 0.9, **COMMON)
    assert read_ledger()["x.c"]["status"] == "fail"
    with pytest.raises(ClaimFailed):
        check_claim("x.nan", float("nan"), ">=", 0.9, **COMMON)
    r = check_claim("x.d", 0.5, ">=", 0.9, **COMMON, known_failure="does not reproduce on CPU")
    assert not r.passed and read_ledger()["x.d"]["status"] == "not reproduced"
    assert "0 of 2 claims pass" in report_markdown(read_ledger())
    with pytest.raises(ValueError):
        check_claim("x.e", 1, "==", 1, **COMMON)


def test_corrupt_ledger_is_reported(tmp_path):
    p = tmp_path / "ledger.json"
    p.write_text("{not json")
    with pytest.raises(ValueError, match="corrupt"):
        read_ledger(p)
    write_json_atomic(p, {"a": {"b": 1}})
    assert json.loads(p.read_text()) == {"a": {"b": 1}} and [f.name for f in tmp_path.iterdir()] == ["ledger.json"]


def test_verdict_box_shows_every_claim_of_the_chapter(tmp_path, monkeypatch):
    monkeypatch.setenv("GEOMLIB_LEDGER", str(tmp_path / "ledger.json"))
    with pytest.raises(ValueError, match="no claims for chapter 'ch'"):
        verdict("ch")
    check_claim("x.a", 0.95, ">=", 0.9, **COMMON)
    assert verdict("ch").status == "✓ 1 of 1 pass"
    check_claim("x.f", 0.5, ">=", 0.9, **COMMON, known_failure="seed-dependent <here>")
    check_claim("y.a", 0.95, ">=", 0.9, **dict(COMMON, chapter="other"))
    v = verdict("ch")
    assert [r["claim"] for r in v.rows] == ["x.a", "x.f"] and v.status == "⚠ 1 pass, 1 not reproduced"
    box = v._repr_html_()
    assert 'class="admonition warning geomlib-verdict"' in box and "seed-dependent &lt;here&gt;" in box
    assert "x.f: measured 0.5 >= 0.9" in repr(v)
    assert chapter_status([]) == "not run in this build"
    assert chapter_status([{"status": "fail"}, {"status": "pass"}]) == "✗ 1 of 2 FAIL"


def test_a_tendency_records_its_miss_without_stopping(tmp_path, monkeypatch):
    from geomlib import claims
    monkeypatch.setenv("GEOMLIB_LEDGER", str(tmp_path / "ledger.json"))
    monkeypatch.setattr(claims, "TENDENCIES", {"x.t"})
    r = check_claim("x.t", 0.1, ">=", 0.5, **COMMON)  # no ClaimFailed: a tendency may miss on one run
    assert not r.passed and r.status == "tendency" and read_ledger()["x.t"]["status"] == "tendency"
    assert chapter_status([read_ledger()["x.t"]]) == "⚠ 0 pass, 1 tendency"
    assert check_claim("x.t", 0.9, ">=", 0.5, **COMMON).status == "pass"


def test_the_report_names_the_machine_and_fits_seven_columns(tmp_path, monkeypatch):
    from geomlib.report import Report, report_header
    monkeypatch.setenv("GEOMLIB_LEDGER", str(tmp_path / "ledger.json"))
    check_claim("x.a", 0.95, ">=", 0.9, **COMMON)
    rows = read_ledger()
    header = report_header(rows, {})
    assert header.startswith("Built on ") and "device" in header and "threads" in header and "preset cpu" in header
    page = Report(rows, {})._repr_html_()
    assert page.count("<th>") == 7 and "wall (s)" not in page and "table-layout:fixed" in page and header in page
    assert report_markdown(rows, {}).splitlines()[0] == header


def test_a_chapter_check_takes_its_rule_from_checks(tmp_path, monkeypatch):
    """The rule is written once, in CHECKS: a chapter passes the measured value (and a threshold only
    where CHECKS names a computed rule)."""
    from geomlib import Chapter
    from geomlib.claims import CHECKS

    monkeypatch.setenv("GEOMLIB_LEDGER", str(tmp_path / "ledger.json"))
    ch = Chapter("linear_net", "cpu", 0)
    row = ch.check("linear_net.recall", 1.0, paper="p", description="d")
    assert (row.op, row.threshold) == CHECKS["linear_net.recall"]
    with pytest.raises(ValueError, match="pass none"):
        ch.check("linear_net.recall", 1.0, threshold=0.5, paper="p", description="d")
    with pytest.raises(ValueError, match="computed.*threshold="):
        ch.check("linear_net.few_directions", 1.0, paper="p", description="d")
    assert ch.check("linear_net.few_directions", 1.0, threshold=2.0, paper="p", description="d").threshold == 2.0
    with pytest.raises(ValueError, match="not in geomlib.claims.CHECKS"):
        ch.check("linear_net.nothing", 1.0, paper="p", description="d")


def test_claims_read_from_a_shipped_study_say_so_over_seeds():
    """A claim measured on a shipped study is one run: its 'over seeds' column names the study and
    never counts that run once per seed."""
    from pathlib import Path

    from geomlib.claims import CHECKS, FROM_SHIPPED_STUDY
    from geomlib.robustness import over_seeds
    root = Path(__file__).resolve().parents[1]
    for claim, folder in FROM_SHIPPED_STUDY.items():
        assert claim in CHECKS and (root / folder).is_dir(), claim
        spread = {claim: {"seeds": [0, 1, 2, 3, 4], "passed": 5, "min": 1.0, "max": 1.0}}
        assert over_seeds(claim, spread) == f"one shipped study ({folder}): not per seed"
    assert over_seeds("linear_net.recall", {}) == "not run"
