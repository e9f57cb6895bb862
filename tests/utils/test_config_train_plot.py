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


def test_device_defaults_to_an_available_one(monkeypatch):
    monkeypatch.delenv("WORKBOOK_DEVICE", raising=False)
    assert config.get_device().type in {"cpu", "cuda", "mps"}
    assert config.get_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            config.get_device("cuda")


def test_pick_follows_fast_mode(monkeypatch):
    monkeypatch.setattr(config, "FAST", True)
    assert config.pick(full=10, fast=1) == 1
    monkeypatch.setattr(config, "FAST", False)
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
