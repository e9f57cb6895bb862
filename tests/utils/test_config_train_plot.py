"""utils.config, utils.train and utils.plot."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from torch import nn

from utils import config, plot
from utils.train import accuracy, evaluate, train


def test_seed_everything_makes_runs_repeatable():
    config.seed_everything(3)
    a = (np.random.rand(), torch.rand(1).item())
    config.seed_everything(3)
    assert (np.random.rand(), torch.rand(1).item()) == a


def _accelerators(monkeypatch, cuda: bool, mps: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_device_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.delenv("WORKBOOK_DEVICE", raising=False)
    _accelerators(monkeypatch, cuda, mps)
    assert config.get_device().type == expected


def test_device_can_be_forced_and_a_missing_one_is_named(monkeypatch):
    _accelerators(monkeypatch, cuda=True, mps=False)
    monkeypatch.setenv("WORKBOOK_DEVICE", "cpu")
    assert config.get_device().type == "cpu"  # forced, although CUDA is there
    assert config.get_device("cuda").type == "cuda"  # the argument wins over the variable
    _accelerators(monkeypatch, cuda=False, mps=False)
    monkeypatch.setenv("WORKBOOK_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="'cuda' was asked for, but CUDA is not available"):
        config.get_device()
    with pytest.raises(RuntimeError, match="'mps' was asked for, but MPS is not available"):
        config.get_device("mps")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("on", True), ("TRUE", True), (" yes ", True), ("0", False), ("off", False),
     ("", False), (None, False)],
)  # fmt: skip
def test_one_flag_reader_for_every_switch(monkeypatch, value, expected):
    """utils.env.flag is what FAST mode, the grader and the data layer all read."""
    from utils import env

    if value is None:
        monkeypatch.delenv("WORKBOOK_FAST", raising=False)
    else:
        monkeypatch.setenv("WORKBOOK_FAST", value)
    assert env.flag("WORKBOOK_FAST") is expected and env.fast() is expected


def test_one_cache_folder_helper(monkeypatch, tmp_path):
    from utils import env
    from utils.data.download import cache_dir

    monkeypatch.setenv("WORKBOOK_DATA", "")
    assert env.data_dir() == cache_dir() == env.ROOT / "data"  # empty means the default
    monkeypatch.setenv("WORKBOOK_DATA", str(tmp_path))
    assert env.data_dir() == cache_dir() == tmp_path


def test_importing_utils_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, utils, utils.env, utils.instructor.notebook, utils.data.registry; "
    code += "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_pick_follows_fast_mode(monkeypatch):
    """``pick`` reads WORKBOOK_FAST at each call (the grader sets it for its tests)."""
    monkeypatch.setenv("WORKBOOK_FAST", "1")
    assert config.pick(full=10, fast=1) == 1
    monkeypatch.setenv("WORKBOOK_FAST", "0")
    assert config.pick(full=10, fast=1) == 10
    monkeypatch.delenv("WORKBOOK_FAST")
    assert config.pick(full=10, fast=1) == 10


def _toy_data(n=128):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, 4, generator=g)
    Y = (X[:, 0] + X[:, 1] > 0).long()
    return [(X[i : i + 32], Y[i : i + 32]) for i in range(0, n, 32)]


def test_train_learns_and_records_history():
    config.seed_everything(0)
    model = nn.Linear(4, 2)
    data = _toy_data()
    before = evaluate(model, data, nn.functional.cross_entropy, metric_fn=accuracy)
    hist = train(
        model,
        data,
        nn.functional.cross_entropy,
        torch.optim.Adam(model.parameters(), lr=0.05),
        epochs=15,
        val_loader=data,
        metric_fn=accuracy,
        clip=1.0,
        progress=False,
    )
    assert len(hist["train loss"]) == 15 and len(hist["val metric"]) == 15
    assert hist["train loss"][-1] < before["loss"]
    assert hist["val metric"][-1] > 0.9


def test_train_stops_early_and_restores_best_weights():
    model = nn.Linear(4, 2)
    data = _toy_data()
    hist = train(
        model,
        data,
        nn.functional.cross_entropy,
        torch.optim.SGD(model.parameters(), lr=50.0),  # so large the loss bounces
        epochs=40,
        val_loader=data,
        patience=2,
        progress=False,
    )
    assert len(hist["val loss"]) < 40
    final = evaluate(model, data, nn.functional.cross_entropy)["loss"]
    assert final == pytest.approx(min(hist["val loss"]), rel=1e-5)


def test_train_refuses_a_diverged_loss():
    model = nn.Linear(4, 2)
    data = _toy_data()

    def bad_loss(Y_hat, Y):
        return (Y_hat * float("nan")).sum()

    with pytest.raises(FloatingPointError, match="epoch 1, step 0"):
        train(
            model,
            data,
            bad_loss,
            torch.optim.SGD(model.parameters(), lr=0.1),
            epochs=1,
            progress=False,
        )


def test_train_refuses_an_empty_loader():
    model = nn.Linear(4, 2)
    with pytest.raises(ValueError, match="no batches"):
        train(
            model,
            [],
            nn.functional.cross_entropy,
            torch.optim.SGD(model.parameters(), lr=0.1),
            epochs=1,
            progress=False,
        )


def test_clipping_bounds_the_update():
    model = nn.Linear(4, 1)
    X, Y = torch.full((8, 4), 100.0), torch.zeros(8, 1)
    before = model.weight.detach().clone()
    train(
        model,
        [(X, Y)],
        nn.functional.mse_loss,
        torch.optim.SGD(model.parameters(), lr=1.0),
        epochs=1,
        clip=0.5,
        progress=False,
    )
    step = torch.cat([(model.weight - before).flatten()]).norm()
    assert step <= 0.5 + 1e-5


def test_plots_return_axes_and_reject_bad_shapes():
    ax = plot.heatmap(np.random.rand(3, 4), x_labels=list("abcd"), y_labels=list("xyz"))
    assert ax.get_xticklabels()[0].get_text() == "a"
    with pytest.raises(ValueError, match="2-D"):
        plot.heatmap(np.zeros(3))
    ax = plot.plot_curves({"train": [3, 2, 1], "val": [3, 2.5, 2]})
    assert len(ax.get_lines()) == 2
    ax = plot.plot_grad_norms({"RNN": np.logspace(0, -5, 20), "LSTM": np.ones(20)})
    assert ax.get_yscale() == "log" and len(ax.get_lines()) == 2
    assert ax.get_lines()[0].get_xdata()[0] == 0
    ax = plot.plot_grad_norms(np.ones(5), start=1)
    assert list(ax.get_lines()[0].get_xdata()) == [1, 2, 3, 4, 5]
    ax = plot.plot_hidden_states(torch.zeros(6, 3), tokens=list("abcabc"))
    assert len(ax.get_xticklabels()) == 6
    matplotlib.pyplot.close("all")


def test_setup_flushes_denormals_only_when_asked():
    from utils.config import setup

    def tiny():  # a float32 denormal, made after setup (a flushing CPU stores it as 0)
        return torch.tensor([1e-39], dtype=torch.float32) * 1.0

    try:
        setup(0, verbose=False, flush_denormal=True)
        assert tiny().item() == 0.0
        setup(0, verbose=False)
        assert tiny().item() > 0.0
    finally:
        torch.set_flush_denormal(False)


@pytest.mark.parametrize("hardware", [True, False])
def test_cpu_bf16_follows_the_hardware_unless_forced(monkeypatch, hardware):
    monkeypatch.delenv("WORKBOOK_BF16", raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: hardware, raising=False)
    assert config.cpu_bf16() is hardware
    assert config.cpu_bf16(prefer=not hardware) is (not hardware)  # the argument wins
    monkeypatch.setenv("WORKBOOK_BF16", "0" if hardware else "1")
    assert config.cpu_bf16() is (not hardware)  # so does the variable
    assert config.cpu_bf16(prefer=hardware) is hardware  # over the variable, the argument


def test_cpu_bf16_is_false_where_torch_cannot_tell(monkeypatch):
    monkeypatch.delenv("WORKBOOK_BF16", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    assert config.cpu_bf16() is False
