"""Presets carry their provenance: every departure from the authors' release has a reason, no
reason is left over from a departure that is gone, and the path-star `paper` presets are the
release's recipe."""
from dataclasses import replace

import pytest

from geomlib import presets
from geomlib.presets import PRESETS, RELEASE, WHY, departures, is_release, setup_table


@pytest.mark.parametrize("chapter", sorted(PRESETS))
def test_every_departure_has_a_reason(chapter):
    for name in PRESETS[chapter]:
        table = setup_table(chapter, name)  # raises when a departure has no reason
        assert all(why for *_, why in table.rows)
        text = table._repr_markdown_()
        assert ("Setup vs the authors' release" in text) == bool(table.rows)


@pytest.mark.parametrize("chapter", sorted(PRESETS))
def test_no_reason_without_a_departure(chapter):
    """A reason whose setting no longer departs (in any preset) is stale text: remove it."""
    used = {path for name in PRESETS[chapter] for path, *_ in departures(PRESETS[chapter][name], RELEASE[chapter])}
    shared = set(presets._WHY_PATHSTAR)  # the path-star chapters' common reasons, not all used by each
    own = {p for p in WHY[chapter] if p.split(".", 1)[-1] not in shared and p.split("].", 1)[-1] not in shared}
    assert own <= used, f"{chapter}: reasons for settings that do not depart: {own - used}"


def test_the_path_star_paper_presets_are_the_release_recipe():
    for chapter in ("path_finding_from_memory", "no_reverse_cascade", "hardest_token", "mamba_too", "scaling",
                    "interventions"):
        assert is_release(chapter, "paper"), setup_table(chapter, "paper")
    assert not is_release("path_finding_from_memory", "cpu")
    run = presets.RELEASE_RECIPE["cpu"]
    assert (run.stages[0].data, run.stages[0].path_fraction, run.stages[0].train.lr, run.model.pos_init_std,
            run.decode) == ("mixed", None, 5e-4, 1.0, "vocab")


def test_a_new_departure_without_a_reason_is_an_error(monkeypatch):
    cfg = PRESETS["hardest_token"]["cpu"]
    monkeypatch.setitem(PRESETS["hardest_token"], "cpu", replace(cfg, run=replace(cfg.run, self_edges=True)))
    with pytest.raises(KeyError, match="run.self_edges"):
        setup_table("hardest_token", "cpu")


def test_stages_are_matched_by_their_data():
    rows = {path: (ours, theirs) for path, ours, theirs in
            departures(PRESETS["path_finding_from_memory"]["cpu"], RELEASE["path_finding_from_memory"])}
    assert "run.stages" in rows  # edges + mixed against one mixed stage
    assert rows["run.stages[mixed].train.lr"] == (2e-3, 5e-4)
    assert not any(p.startswith("run.stages[edges]") for p in rows)  # the release has no edge stage to compare


def test_every_chapter_shows_its_setup_table():
    import json
    from pathlib import Path

    book = Path(__file__).resolve().parents[1] / "book"
    for chapter in PRESETS:
        nb = json.loads((book / f"{chapter}.ipynb").read_text())
        code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        assert "ch.setup_table()" in code, f"{chapter} does not show its setup-vs-release table"


def test_format_departures_belong_to_chapters_and_show_in_their_tables():
    from geomlib.presets import FORMATS

    assert set(FORMATS) <= set(PRESETS)
    for chapter, rows in FORMATS.items():
        table = str(setup_table(chapter))
        for setting, ours, release, why in rows:
            assert why and ours != release
            assert f"`{setting}`" in table


def test_a_setup_table_renders_as_a_folded_html_table_under_a_one_line_summary():
    from geomlib.presets import setup_table
    t = setup_table("path_finding_from_memory")
    page = t._repr_html_()
    assert page.index("<details>") < page.index("<table") and "| setting |" not in page
    assert page.count("<tr>") == len(t.rows) + 1  # a header and one row per departing setting
    assert t.summary().startswith(f"{len(t.rows)} settings differ (") and "for the CPU budget" in t.summary()
    assert setup_table("linear_net").summary().startswith("1 setting differs")
