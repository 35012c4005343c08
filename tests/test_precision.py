"""Precision: what a run asks for, how it is computed, and what its ledger row says it used."""
import json

import pytest
import torch
import torch.nn.functional as F

from geomlib import precision
from geomlib.precision import bf16_context, native_bf16, precision_label, resolve_precision
from geomlib.train import TrainConfig


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("GEOMLIB_PRECISION", raising=False)
    monkeypatch.delenv("GEOMLIB_NATIVE_BF16", raising=False)
    return monkeypatch


def test_auto_follows_the_hardware_and_the_environment_governs_every_run(clean_env):
    assert resolve_precision("auto") == ("bf16" if native_bf16() else "fp32")
    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"
    assert precision.forced() is None
    clean_env.setenv("GEOMLIB_PRECISION", "fp32")  # forces explicit requests too: a fp32 rerun is one
    assert resolve_precision("auto") == resolve_precision("bf16") == precision.forced() == "fp32"
    clean_env.setenv("GEOMLIB_PRECISION", "bf16")
    assert resolve_precision("fp32") == "bf16"


def test_bad_settings_are_refused_before_any_work(clean_env):
    clean_env.setenv("GEOMLIB_PRECISION", "fp16")
    with pytest.raises(ValueError, match="GEOMLIB_PRECISION"):
        resolve_precision("auto")
    from geomlib import Chapter
    with pytest.raises(ValueError, match="GEOMLIB_PRECISION"):
        Chapter("linear_net", "cpu", 0)
    clean_env.setenv("GEOMLIB_PRECISION", "fp32")
    clean_env.setenv("GEOMLIB_NATIVE_BF16", "yes")
    with pytest.raises(ValueError, match="GEOMLIB_NATIVE_BF16"):
        native_bf16()
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(steps=1, precision="half")


def test_labels_say_how_bf16_is_computed(clean_env):
    clean_env.setenv("GEOMLIB_NATIVE_BF16", "0")
    assert precision_label("bf16") == "bf16 (rounded)" and precision_label("auto") == "fp32"
    clean_env.setenv("GEOMLIB_NATIVE_BF16", "1")
    assert precision_label("bf16") == precision_label("auto") == "bf16"


def _step(x, w, b, w2, targets):
    h = F.linear(x, w, b).relu()
    y = (h @ w2).softmax(-1) @ w2.T
    return F.cross_entropy((y @ w2).float(), targets)


def test_rounded_matmuls_give_bf16_autocast_numerics(clean_env):
    """Where bf16 is not native the trainer multiplies bf16-rounded operands in fp32: forward and
    gradients agree with PyTorch's bf16 autocast to bf16's own resolution, far closer than fp32."""
    g = torch.Generator().manual_seed(0)
    x, w, b, w2 = (torch.randn(*s, generator=g).requires_grad_() for s in ((64, 48), (40, 48), (40,), (40, 24)))
    targets = torch.randint(0, 24, (64,), generator=g)
    grads = {}
    for mode in ("autocast", "rounded", "fp32"):
        clean_env.setenv("GEOMLIB_NATIVE_BF16", "0" if mode == "rounded" else "1")
        for t in (x, w, b, w2):
            t.grad = None
        with bf16_context("fp32" if mode == "fp32" else "bf16", "cpu"):
            loss = _step(x, w, b, w2, targets)
        loss.backward()
        grads[mode] = (loss.item(), [t.grad.clone() for t in (x, w, b, w2)])
    for (l_a, g_a), (l_r, g_r), (l_f, g_f) in [(grads["autocast"], grads["rounded"], grads["fp32"])]:
        assert abs(l_a - l_r) <= 0.1 * abs(l_a - l_f), "the loss: rounded matmuls drift from bf16 autocast"
        for a, r, f in zip(g_a, g_r, g_f):
            assert (a - r).abs().max() <= 0.1 * (a - f).abs().max(), "a gradient: rounded matmuls drift from autocast"


def test_ledger_rows_name_the_precision_and_device_their_runs_used(tmp_path, clean_env):
    """A chapter forced to fp32 records fp32 even where its preset asks for bf16; without the force,
    a run asking for bf16 on a CPU without native bf16 records the emulated kind; a chapter that
    trains nothing says so."""
    from geomlib import Chapter
    from geomlib.graphs import cycle
    from geomlib.presets import get_preset
    from geomlib.recipes import edge_run

    clean_env.setenv("GEOMLIB_LEDGER", str(tmp_path / "ledger.json"))
    recipe = get_preset("linear_net").recipe  # asks for bf16 (the release's precision)
    assert recipe.train.precision == "bf16"
    from dataclasses import replace
    short = replace(recipe, train=replace(recipe.train, steps=3))
    cases = [("fp32", "1", "fp32"), ("", "0", "bf16 (rounded)"), ("", "1", "bf16")]
    for forced, native, label in cases:
        clean_env.setenv("GEOMLIB_PRECISION", forced)
        clean_env.setenv("GEOMLIB_NATIVE_BF16", native)
        ch = Chapter("linear_net", "cpu", 0)
        _, hist = edge_run(cycle(6), short, 0, eval_every=0, progress=False)
        assert hist.meta["configs"][0]["computed_as"] == label
        row = ch.check("linear_net.recall", 1.0, paper="p", description="d")
        assert (row.precision, row.device) == (label, "cpu")
        assert json.loads((tmp_path / "ledger.json").read_text())["linear_net.recall"]["precision"] == label
    clean_env.setenv("GEOMLIB_PRECISION", "")
    ch = Chapter("linear_net", "cpu", 0)
    assert ch.check("linear_net.recall", 1.0, paper="p", description="d").precision == "none"


def test_runs_from_other_processes_and_the_cache_are_recorded(clean_env):
    from geomlib.train import History, note_precisions

    precision.reset_used()
    note_precisions(History(meta={"configs": [{"resolved_precision": "bf16", "computed_as": "bf16 (rounded)",
                                               "device": "cpu"}, {"resolved_precision": "fp32", "device": "cpu"}]}))
    assert precision.used() == ("bf16 (rounded) + fp32", "cpu")
