"""Chapter 9 (RNNs today): the parallel forms equal the sequential ones.

The functions come from the cells tagged ``defs`` in notebooks/09_rnns_today.ipynb: the
Hillis-Steele scan equals the loop, minGRU's log-space scan equals its step-by-step recurrence,
the S4D convolution equals its recurrence, zero-order hold equals the matrix exponential, the
selective scan's parallel form equals its loop, and the TCN is causal. Each mutation test runs the
same cells with one deliberate bug and shows the check catches it. Timings are never asserted.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.factories import mutated_namespace, notebook_namespace

NOTEBOOK = "notebooks/09_rnns_today.ipynb"
F64 = torch.float64


@pytest.fixture(scope="module")
def ch9():
    return notebook_namespace(NOTEBOOK)


def _mutant(old: str, new: str) -> dict:
    """The notebook's ``defs`` cells with ``old`` (found exactly once) replaced by ``new``."""
    return mutated_namespace(NOTEBOOK, old, new)


def _check_scan(ns, N=3, T=37, H=4, seed=0):
    """Assert the parallel scan equals the loop (T not a power of two on purpose)."""
    torch.manual_seed(seed)
    a = torch.rand(N, T, H, dtype=F64)
    b = torch.randn(N, T, H, dtype=F64)
    h0 = torch.randn(N, H, dtype=F64)
    loop = ns["linear_recurrence_loop"](a, b, h0)
    assert loop.shape == (N, T, H)
    torch.testing.assert_close(loop[:, 0], a[:, 0] * h0 + b[:, 0])  # h_1 from h_0
    torch.testing.assert_close(ns["linear_recurrence_scan"](a, b, h0), loop, rtol=1e-12, atol=1e-12)


def _check_mingru(ns, N=2, T=40, D=3, H=5, seed=0):
    torch.manual_seed(seed)
    model = ns["MinGRU"](D, H).double()
    X = torch.randn(N, T, D, dtype=F64)
    h0 = 0.1 + torch.rand(N, H, dtype=F64)
    with torch.no_grad():
        parallel, sequential = model(X, h0), model.forward_sequential(X, h0)
    torch.testing.assert_close(parallel, sequential, rtol=1e-10, atol=1e-10)


def _check_ssm(ns, N=2, T=64, H=3, S=8, seed=0):
    torch.manual_seed(seed)
    log_dt, A, B, C = ns["s4d_init"](H, S)
    A_bar, B_bar = ns["zoh"](log_dt, A, B)
    u = torch.randn(N, T, H, dtype=F64)
    K = ns["ssm_kernel"](A_bar, B_bar, C, T)
    conv = ns["ssm_convolution"](u, K)
    torch.testing.assert_close(
        conv, ns["ssm_recurrent"](u, A_bar, B_bar, C), rtol=1e-10, atol=1e-10
    )


def _check_zoh(ns, H=3, S=8, seed=0):
    """Zero-order hold equals exp(dt [[A, B], [0, 0]]), the exact solution for a held input."""
    torch.manual_seed(seed)
    log_dt, A, B, _ = ns["s4d_init"](H, S)
    B = B * torch.randn(H, S, dtype=F64)  # B != 1 so A_bar and B_bar cannot be confused
    A_bar, B_bar = ns["zoh"](log_dt, A, B)
    dt = log_dt.exp()[:, None]
    M = torch.zeros(H, S, 2, 2, dtype=torch.complex128)
    M[..., 0, 0], M[..., 0, 1] = A * dt, B * dt
    E = torch.linalg.matrix_exp(M)
    torch.testing.assert_close(A_bar, E[..., 0, 0], rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(
        B_bar, E[..., 0, 1], rtol=1e-9, atol=1e-10
    )  # (A_bar - 1) cancels a little


def _check_selective(ns, N=2, T=45, D=3, S=4, seed=0):
    torch.manual_seed(seed)
    u = torch.randn(N, T, D, dtype=F64)
    delta = F.softplus(torch.randn(N, T, D, dtype=F64))
    A = -torch.rand(D, S, dtype=F64) - 0.1
    B, C = torch.randn(N, T, S, dtype=F64), torch.randn(N, T, S, dtype=F64)
    seq = ns["selective_scan_sequential"](u, delta, A, B, C)
    assert seq.shape == (N, T, D)
    par = ns["selective_scan_parallel"](u, delta, A, B, C)
    torch.testing.assert_close(par, seq, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("sizes", [(3, 37, 4), (1, 1, 1), (2, 64, 3), (2, 65, 2)])
def test_scan_equals_loop(ch9, sizes):
    N, T, H = sizes
    _check_scan(ch9, N, T, H)


@pytest.mark.parametrize(
    "old, new",
    [
        # the scan without the decay term: B_t becomes a plain prefix sum
        ("A, B = A * A_prev, A * B_prev + B", "A, B = A * A_prev, B_prev + B"),
        # a shift of d + 1 instead of d: positions combined with the wrong earlier step
        ("F.pad(B[:, :-d], (0, 0, d, 0), value=0.0)", "F.pad(B[:, : -d - 1], (0, 0, d + 1, 0))"),
        # h_0 never decays
        ("return A * h0[:, None] + B", "return h0[:, None] + B"),
    ],
)
def test_scan_check_catches_mutations(old, new):
    mutant = _mutant(old, new)  # outside pytest.raises: a stale mutation must not pass
    with pytest.raises(AssertionError):
        _check_scan(mutant)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mingru_parallel_equals_sequential(ch9, seed):
    _check_mingru(ch9, seed=seed)
    _check_mingru(ch9, N=1, T=1, D=1, H=1, seed=seed)


@pytest.mark.parametrize(
    "old, new",
    [
        # the log-space scan forgets the decay a*_t
        ("log_h = a_star + log_h0_plus_b_star", "log_h = log_h0_plus_b_star"),
        # log(1 - z) and log z swapped
        (
            "parallel_scan_log(-F.softplus(k), log_values)",
            "parallel_scan_log(-F.softplus(-k), log_values)",
        ),
        # the candidate without g in the parallel form
        ("-F.softplus(-k) + log_g(self.candidate(X))", "-F.softplus(-k) + self.candidate(X)"),
    ],
)
def test_mingru_check_catches_mutations(old, new):
    mutant = _mutant(old, new)
    with pytest.raises(AssertionError):
        _check_mingru(mutant)


def test_mingru_activation_is_positive_and_continuous(ch9):
    x = torch.linspace(-20, 20, 4001, dtype=F64)
    assert (ch9["g"](x) > 0).all()
    torch.testing.assert_close(ch9["log_g"](x), ch9["g"](x).log())
    assert ch9["g"](torch.tensor([0.0], dtype=F64)).item() == 0.5  # sigmoid(0) = 0 + 0.5


@pytest.mark.parametrize("sizes", [(2, 64, 3, 8), (1, 1, 1, 1), (3, 33, 2, 4)])
def test_ssm_convolution_equals_recurrence(ch9, sizes):
    N, T, H, S = sizes
    _check_ssm(ch9, N, T, H, S)


@pytest.mark.parametrize(
    "old, new",
    [
        # the kernel off by one step: K_j = C A_bar^(j+1) B_bar
        ("torch.arange(T)[None, :, None]", "torch.arange(1, T + 1)[None, :, None]"),
        # a circular convolution: no zero padding before the FFT
        (
            "spectrum = torch.fft.rfft(u.transpose(1, 2), n=2 * T) * torch.fft.rfft(K, n=2 * T)",
            "spectrum = torch.fft.rfft(u.transpose(1, 2), n=T) * torch.fft.rfft(K, n=T)",
        ),
        # the recurrence reads the output before the input update
        ("x = A_bar * x + B_bar * u[:, t, :, None]", "x = A_bar * (x + B_bar * u[:, t, :, None])"),
    ],
)
def test_ssm_check_catches_mutations(old, new):
    mutant = _mutant(old, new)
    with pytest.raises(AssertionError):
        _check_ssm(mutant)


def test_zoh_equals_matrix_exponential(ch9):
    _check_zoh(ch9)
    _check_zoh(ch9, H=1, S=1, seed=3)


@pytest.mark.parametrize(
    "old, new",
    [
        # Euler for B: B_bar = dt * B, the wrong discretisation
        ("return A_bar, (A_bar - 1) / A * B", "return A_bar, dt * B"),
        # Euler for A: A_bar = 1 + dt * A
        ("A_bar = torch.exp(dt * A)", "A_bar = 1 + dt * A"),
    ],
)
def test_zoh_check_catches_mutations(old, new):
    mutant = _mutant(old, new)
    with pytest.raises(AssertionError):
        _check_zoh(mutant)


@pytest.mark.parametrize("sizes", [(2, 45, 3, 4), (1, 1, 1, 1), (2, 16, 2, 3)])
def test_selective_scan_parallel_equals_sequential(ch9, sizes):
    _check_selective(ch9, *sizes)


@pytest.mark.parametrize(
    "old, new",
    [
        # the decay fixed (delta ignored in A_bar): no longer the same recurrence
        ("a = torch.exp(delta[..., None] * A)", "a = torch.exp(A).expand(N, T, D, S)"),
        # C read one step late
        (
            "return (h * C[:, :, None, :]).sum(-1)",
            "return (h * C.roll(1, 1)[:, :, None, :]).sum(-1)",
        ),
    ],
)
def test_selective_check_catches_mutations(old, new):
    mutant = _mutant(old, new)
    with pytest.raises(AssertionError):
        _check_selective(mutant)


def _check_tcn_causal(ns, T=40, t=17, seed=0):
    """The TCN's output at step t must not depend on inputs after t."""
    torch.manual_seed(seed)
    tcn = ns["TCN"](2, 4, num_blocks=3, kernel_size=3)
    X = torch.randn(1, T, 2, requires_grad=True)
    out = tcn.features(X)
    assert out.shape == (1, T, 4)
    out[0, t - 1].sum().backward()  # output at step t (1-based)
    assert X.grad[0, t:].abs().sum() == 0, "the output at t sees the future"
    assert X.grad[0, :t].abs().sum() > 0


def test_tcn_is_causal_and_receptive_field(ch9):
    _check_tcn_causal(ch9)
    tcn = ch9["TCN"](2, 4, num_blocks=3, kernel_size=3)
    assert tcn.receptive_field == 1 + 2 * 2 * 7
    # an impulse at t = 1 reaches exactly receptive_field - 1 steps further
    with torch.no_grad():
        for p in tcn.parameters():
            p.copy_(p.abs() + 0.1)  # positive weights: nothing cancels
        X = torch.zeros(1, 60, 2)
        X[0, 0] = 1.0
        base = tcn.features(torch.zeros(1, 60, 2))
        reached = (tcn.features(X) - base).abs().sum(-1)[0] > 0
    assert reached[: tcn.receptive_field].all() and not reached[tcn.receptive_field :].any()


def test_tcn_check_catches_symmetric_padding():
    mutant = _mutant(
        "F.pad(x, (self.left, 0))", "F.pad(x, (self.left // 2, self.left - self.left // 2))"
    )
    with pytest.raises(AssertionError, match="future"):
        _check_tcn_causal(mutant)


def test_memory_formulas(ch9):
    assert ch9["lstm_state_bytes"](12, 768) == 2 * 12 * 768 * 4
    assert ch9["kv_cache_bytes"](12, 768, 1) == 2 * 12 * 768 * 4  # one position = one LSTM state
    assert ch9["kv_cache_bytes"](12, 768, 8192) == 8192 * ch9["lstm_state_bytes"](12, 768)
    assert ch9["kv_cache_bytes"](2, 10, 5, bytes_per_number=2) == 2 * 2 * 5 * 10 * 2


def test_scan_round_count_is_logarithmic(ch9, monkeypatch):
    """The scan's rounds: ceil(log2 T) pads of B, not T steps."""
    calls = []
    real_pad = F.pad
    ns = dict(ch9)

    class CountingF:
        def __getattr__(self, name):
            return getattr(F, name)

        @staticmethod
        def pad(*args, **kwargs):
            calls.append(1)
            return real_pad(*args, **kwargs)

    ns["F"] = CountingF()
    scan = type(ch9["linear_recurrence_scan"])(
        ch9["linear_recurrence_scan"].__code__, ns, "linear_recurrence_scan"
    )
    x = torch.rand(1, 1000, 1, dtype=F64)
    scan(x, x, torch.zeros(1, 1, dtype=F64))
    assert len(calls) == 2 * math.ceil(math.log2(1000))


def test_defs_define_no_training(ch9):
    """The defs cells hold definitions only: loading them must stay cheap (no model trained)."""
    assert isinstance(ch9["MinGRU"](2, 3), nn.Module)
    assert "train_regressor" not in ch9 and "curves" not in ch9
