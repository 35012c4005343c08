import json

import pytest

from geomlib.claims import ClaimFailed, check_claim, read_ledger, report_markdown, write_json_atomic

COMMON = dict(paper="p", description="d", chapter="ch", preset="cpu", seed=0)


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
