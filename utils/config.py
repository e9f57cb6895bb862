"""Seeds, device choice, FAST mode and paths, in one place.

Environment flags are read by :mod:`utils.env`; this module adds what needs
NumPy and torch. Every notebook starts with::

    from utils.config import setup
    device = setup(seed=0)

FAST mode (``WORKBOOK_FAST=1``) is what CI uses: smaller data and fewer epochs so
that every notebook runs in seconds. Students get the full run by default.
Use :func:`pick` to choose a size: ``epochs = pick(full=30, fast=2)``.
"""

from __future__ import annotations

import os
import random
import warnings
from pathlib import Path

import numpy as np
import torch

from utils import env
from utils.env import ROOT

FAST: bool = env.fast()
"""True when ``WORKBOOK_FAST`` is set: CI-sized data and epochs (see :mod:`utils.env`)."""

DATA_DIR: Path = env.data_dir()
"""Where datasets are cached (``$WORKBOOK_DATA`` or ``data/``)."""

CHECKPOINT_DIR = ROOT / "checkpoints"
"""Where notebooks save trained weights (git-ignored)."""


def pick(full, fast):
    """Return ``fast`` in FAST mode and ``full`` otherwise.

    Reads ``WORKBOOK_FAST`` at each call, so the grader's tests agree with the kernel
    they grade (the grader sets it for the mode it runs in).

    >>> pick(full=30, fast=2) in (30, 2)
    True
    """
    return fast if env.fast() else full


def seed_everything(seed: int = 0) -> None:
    """Seed Python's ``random``, NumPy and PyTorch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA and MPS devices


def get_device(prefer: str | None = None) -> torch.device:
    """The best available device: ``cuda``, then ``mps``, then ``cpu``.

    ``prefer`` (or the ``WORKBOOK_DEVICE`` environment variable) forces one,
    e.g. ``"cpu"`` to compare timings. Nothing in the workbook requires a GPU.
    """
    choice = (prefer or env.text("WORKBOOK_DEVICE") or "").strip().lower()
    if choice:
        if choice.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"device {choice!r} was asked for, but CUDA is not available")
        if choice == "mps" and not (
            hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
        ):
            raise RuntimeError("device 'mps' was asked for, but MPS is not available")
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_bf16(prefer: bool | None = None) -> bool:
    """Whether to train on this CPU under ``torch.autocast("cpu", dtype=torch.bfloat16)``.

    True where the CPU multiplies bfloat16 matrices in hardware (Intel's AMX tiles,
    Xeons since Sapphire Rapids): there Lab 4's training step of a 2-layer GRU runs
    about 1.7 times as fast as in float32 (0.50 s against 0.86 s on the course's
    reference machine), and the validation loss after the first epoch is the same
    to three decimals. Elsewhere bfloat16 does not pay, so the answer is False: on
    the same machine with oneDNN kept from AMX (``ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16``,
    AVX-512's bfloat16 instructions only) the step took 1.14 s against 0.84 s in
    float32, and kept to AVX2, which has no bfloat16 instructions (as on many laptops),
    32 s against 0.8 s. The weights stay in float32 either way; autocast computes
    the matrix products in bfloat16.

    ``prefer``, else the ``WORKBOOK_BF16`` variable (``1`` or ``0``), forces the
    answer, e.g. to compare the two on one machine.
    """
    if prefer is not None:
        return bool(prefer)
    if env.text("WORKBOOK_BF16") is not None:
        return env.flag("WORKBOOK_BF16")
    return cpu_has_amx()


def cpu_has_amx() -> bool:
    """True when this CPU has Intel's AMX tiles (bfloat16 matrix units), as torch sees it."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)  # not in every torch build
    try:
        return bool(probe is not None and probe())
    except RuntimeError:
        return False


def setup(
    seed: int = 0,
    *,
    verbose: bool = True,
    device: str | None = None,
    threads: int | None = None,
    flush_denormal: bool = False,
) -> torch.device:
    """Seed everything, choose the device, set plot defaults; return the device.

    ``threads``: CPU threads for torch. The default is ``OMP_NUM_THREADS`` when
    set, else 1: the small recurrent models of the chapters step through time
    one small matmul at a time, where extra threads cost more in
    synchronisation than they save (and on a busy machine, far more).

    ``flush_denormal``: treat denormal floats (float32 below about 1.2e-38) as 0
    on the CPU (``torch.set_flush_denormal``). x86 CPUs compute on denormals many
    times more slowly than on normal numbers, and an LSTM trained on text can
    produce them in its backward pass: Chapter 8 measures a 7x faster training
    step with it on. The change to the numbers is below float32's resolution of
    anything a model prints, but not bit-for-bit, so it is opt-in.
    """
    seed_everything(seed)
    if not torch.set_flush_denormal(flush_denormal) and flush_denormal:
        warnings.warn(
            "this CPU cannot flush denormal numbers; training may be slower", stacklevel=2
        )
    env_threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads is None:
        threads = int(env_threads) if env_threads.isdigit() else 1
    torch.set_num_threads(max(1, threads))
    try:
        import matplotlib.pyplot as plt

        plt.rcParams.update(
            {"figure.figsize": (6.4, 3.6), "figure.dpi": 90, "axes.grid": True, "grid.alpha": 0.3}
        )
    except ImportError:  # plotting is optional for scripts
        pass
    dev = get_device(device)
    if verbose:
        print(f"device: {dev.type} | FAST mode: {FAST} | seed: {seed}")
    return dev
