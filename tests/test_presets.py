"""Presets carry their provenance: every departure from the authors' release has a reason given
beside its value, no reason is left over from a departure that is gone, and the path-star
`paper` presets are the release's recipe."""
import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from geomlib import presets  # noqa: E402
from geomlib.presets import PRESETS, RELEASE, departures, is_release, setup_table  # noqa: E402
from geomlib.specs import Spec, values  # noqa: E402


@pytest.mark.parametrize("chapter", sorted(PRESETS))
def test_every_departure_has_a_reason(chapter):
    for name in PRESETS[chapter]:
        table = setup_table(chapter, name)  # raises when a departure has no reason
        assert all(why for *_, why in table.rows)
        text = table._repr_markdown_()
        assert ("Setup vs the authors' release" in text) == bool(table.rows)


def _reasons(spec, path=""):
    """Every (setting, reason) a spec and its parts give, as (path of the setting, reason)."""
    if isinstance(spec, Spec):
        yield from ((f"{path}.{k}".lstrip("."), why) for k, why in spec.why.items())
        for f in values(spec):
            yield from _reasons(getattr(spec, f.name), f"{path}.{f.name}".lstrip("."))
    elif isinstance(spec, dict):
        for k, v in spec.items():
            yield from _reasons(v, f"{path}[{k}]")
    elif isinstance(spec, tuple):
        for v in spec:
            yield from _reasons(v, f"{path}[{getattr(v, 'data', '')}]")


def test_no_reason_without_a_departure():
    """A reason that explains no departure of any preset is stale text: remove it."""
    given = {why for chapter in PRESETS for preset in PRESETS[chapter].values() for _, why in _reasons(preset)}
    used = {d.why for chapter in PRESETS for preset in PRESETS[chapter].values()
            for d in departures(preset, RELEASE[chapter])}
    assert given <= used, f"reasons for settings that depart nowhere: {given - used}"


def test_a_reason_sits_beside_its_value_and_follows_a_variant():
    from geomlib.presets import PATHSTAR_L5_CPU, PATHSTAR_L6_CPU
    rows = {d.path: d.why for d in departures(PATHSTAR_L6_CPU, RELEASE["path_finding_from_memory"].run)}
    assert rows["model.emb_init_std"].startswith("at l = 6 a small token init")  # given where l = 6 sets it
    assert rows["stages[mixed].train.lr"] == PATHSTAR_L5_CPU.stages[1].why["train.lr"]  # carried over by replace
    assert "l" not in rows and "stages[mixed].train.weight_decay" not in rows  # values as the release: no row


# The release's path-star recipe as the paper's release states it (the paper brief's last section),
# typed here from the text, not taken from presets/release.py: the paper presets must match these values.
RELEASE_PATHSTAR_STATED = dict(
    d=10_000, l=6, decode="vocab", precision="bf16", n_layer=12, n_embd=384, stages=1, data="mixed", path_fraction=None,
    batch=2048, steps=525_000, lr=5e-4, warmup=1000, final_lr_ratio=0.1, weight_decay=0.01, decay_all=True,
    betas=(0.9, 0.999), grad_clip=None)


def _stated(run) -> dict:
    st = run.stages[0]
    return dict(d=run.d, l=run.l, decode=run.decode, precision=run.precision, n_layer=run.model.n_layer,
                n_embd=getattr(run.model, "n_embd", None) or run.model.d_model, stages=len(run.stages), data=st.data,
                path_fraction=st.path_fraction, batch=st.batch, steps=st.train.steps, lr=st.train.lr,
                warmup=st.train.warmup, final_lr_ratio=st.train.final_lr_ratio, weight_decay=st.train.weight_decay,
                decay_all=st.train.decay_all, betas=tuple(st.train.betas), grad_clip=st.train.grad_clip)


def test_the_path_star_paper_presets_are_the_release_recipe():
    """Every path-star `paper` preset runs the release's recipe, value by value as stated above (10,000
    epochs of the d = 10^4 graph in batches of 2,048 are about 525,000 steps), and the setup table agrees."""
    from long_run import release_steps
    assert abs(release_steps(10_000, 6, 2048) / RELEASE_PATHSTAR_STATED["steps"] - 1) < 0.001  # 524,900, rounded
    runs = {"path_finding_from_memory": ["run"], "no_reverse_cascade": ["run"], "hardest_token": ["run"],
            "mamba_too": ["run", "transformer"], "scaling": ["base"]}
    for chapter, fields in runs.items():
        for field in fields:
            run = getattr(PRESETS[chapter]["paper"], field)
            assert _stated(run) == RELEASE_PATHSTAR_STATED, (chapter, field, _stated(run))
            if run.model.kind == "gpt":
                assert (run.model.n_head, run.model.pos_init_std) == (8, 1.0), (chapter, field)
            else:  # the release's Mamba: no residual stream, no final norm
                assert (run.model.residual, run.model.final_norm) == (False, False), chapter
    assert PRESETS["hardest_token"]["paper"].run.hardest_token
    for chapter in ("path_finding_from_memory", "no_reverse_cascade", "hardest_token", "mamba_too", "scaling",
                    "interventions"):
        assert is_release(chapter, "paper"), setup_table(chapter, "paper")
    assert not is_release("path_finding_from_memory", "cpu")
    run = presets.RELEASE_RECIPE["cpu"]  # the release's recipe at the book's scale (the ablation)
    assert (run.stages[0].data, run.stages[0].path_fraction, run.stages[0].train.lr, run.model.pos_init_std,
            run.decode) == ("mixed", None, 5e-4, 1.0, "vocab")


def test_a_new_departure_without_a_reason_is_an_error(monkeypatch):
    cfg = PRESETS["hardest_token"]["cpu"]
    monkeypatch.setitem(PRESETS["hardest_token"], "cpu", replace(cfg, run=replace(cfg.run, self_edges=True)))
    with pytest.raises(KeyError, match="run.self_edges"):
        setup_table("hardest_token", "cpu")


def test_stages_are_matched_by_their_data():
    rows = {path: (ours, theirs) for path, ours, theirs, _ in
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
