"""Lab 5: checks of Luong attention (the scores, the masked softmax, one decoder step).

The references are written out in float64 torch, independently of the lab's formulas
where possible: the "general" score as the sum over ``H_s * (h_t W_a)``, the masked
softmax as exponentials divided by their sum over the real tokens only, and the GRU
cell's gates one by one (PyTorch's order r, z, n). Known wrong answers (W_a transposed,
tanh missing, the mask ignored or inverted, input feeding forgotten, ...) are outputs of
the same references with one thing changed. Each check then calls the function again
with inputs that require gradients and compares the gradients autograd finds through it
with the reference's: a ``.detach()``, ``.data``, ``torch.no_grad()``, a detour through
NumPy or an in-place change autograd needs undone would stop training. (The grader's
stand-in of a function returns values only: there the gradients are left to the notebook.)
Shapes::

    h_t (N, H)   H_s (N, S, H_enc)   scores, mask, weights (N, S)   context (N, H_enc)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from utils.checks.core import CheckError, passed, seeded
from utils.checks.engine import Cause, call_unchanged, compare, describe, fail, keeps_graph, unpack

__all__ = ["check_attend", "check_decoder_step", "check_luong_scores"]

THRESHOLD = 1e-7


def _tensor(label: str, out) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise fail(f"{label} is a {describe(out)}, expected a torch tensor.",
                   "Did the function forget to `return` it?" if out is None else
                   "Stay in torch (no .item(), .tolist() or NumPy).")  # fmt: skip
    return out


CUT = (
    "Stay in autograd: .detach(), .data, torch.no_grad() or a detour through NumPy cut "
    "the graph, and training would never update the weights before this step."
)


def _leaves(tensors: dict) -> dict:
    """Copies of the tensors that require gradients (the inputs of a gradient check)."""
    return {k: v.detach().clone().requires_grad_(True) for k, v in tensors.items()}


def _check_gradients(label: str, call_fn: Callable, reference: Callable, leaves: dict,
                     names: tuple[str, ...], rng: np.random.Generator) -> None:  # fmt: skip
    """The gradients of sum(R * outputs) with respect to each leaf, through the student's
    function (``call_fn(leaves)``) and through the reference, agree: nothing is detached."""
    try:
        got = call_fn(leaves)
    except CheckError as e:
        if "requires grad" not in str(e):
            raise
        raise fail(f"{label} fails on inputs that require gradients: "
                   f"{str(e).removeprefix('[FAIL] ').split(' It was called')[0]}", CUT) from e  # fmt: skip
    want = reference(leaves)
    for name, g in zip(names, got):
        if not (isinstance(g, torch.Tensor) and g.requires_grad):
            raise fail(f"{label}: no gradient flows back through {name}, although its inputs "
                       "require gradients: it is cut from the autograd graph.", CUT)  # fmt: skip
    weights = [torch.tensor(rng.normal(size=tuple(w.shape))) for w in want]
    inputs = list(leaves.values())

    def grads(outputs) -> tuple:
        loss = sum((o * r).sum() for o, r in zip(outputs, weights))
        return torch.autograd.grad(loss, inputs, allow_unused=True)

    try:
        g_got = grads(got)
    except RuntimeError as e:
        raise fail(f"{label}: backpropagation through it fails: {str(e).split(' Hint:')[0]}",
                   "A tensor autograd needs was changed in place (x[...] = ..., masked_fill_, "
                   "+=): build a new tensor instead (masked_fill, torch.where).") from e  # fmt: skip
    for name, a, b in zip(leaves, g_got, grads(want)):
        if a is None or not torch.allclose(a, b, rtol=1e-6, atol=1e-9):
            raise fail(f"{label}: the gradient with respect to {name} is "
                       f"{'missing' if a is None else 'wrong'}: it does not match autograd "
                       "through the reference.", CUT)  # fmt: skip


def _random_mask(rng: np.random.Generator, N: int, S: int) -> torch.Tensor:
    """(N, S) bool, real tokens first; the lengths are S, 1, then random."""
    lengths = np.concatenate([[S, 1], rng.integers(1, S + 1, max(N - 2, 0))])[:N]
    return torch.from_numpy(np.arange(S)[None] < lengths[:, None])


def _t(rng: np.random.Generator, *shape, scale: float = 1.0) -> torch.Tensor:
    return torch.tensor(rng.normal(scale=scale, size=shape))


# ------------------------------------------------------------------ luong_scores


def _score_shape_hint(got_shape: tuple, N: int, S: int, H: int) -> str:
    if got_shape == (N, S, 1):
        return "It keeps a last axis of size 1: squeeze it, the scores are (N, S)."
    if got_shape[:1] == (N,) and len(got_shape) == 2 and got_shape != (N, S):
        return ("It has one value per feature: a score is one number per source position "
                "(reduce over the features, keep S).")  # fmt: skip
    return "The scores are (N, S): one number per source position of each sentence."


def _check_kind(fn, kind, h_t, H_s, params, want, causes, where) -> None:
    out = _tensor(
        f"luong_scores({kind!r})", call_unchanged(fn, "luong_scores", kind, h_t, H_s, params)
    )
    N, S = H_s.shape[:2]
    compare(f"scores ({kind}{where})", out, want.numpy(), threshold=THRESHOLD,
            causes=[Cause(v.numpy(), why) for v, why in causes],
            shape_hint=_score_shape_hint(tuple(out.shape), N, S, h_t.shape[1]))  # fmt: skip


def check_luong_scores(fn: Callable, *, N: int = 3, S: int = 4, H: int = 5, seed: int = 7):
    """Check ``luong_scores(kind, h_t, H_s, params) -> (N, S)`` for the "dot", "general"
    (square and H_enc != H) and "concat" scores, and that an unknown kind raises."""
    rng = seeded(seed)
    H_enc, A = H + 2, H + 1
    h_t = _t(rng, N, H)
    H_sq, H_s = _t(rng, N, S, H), _t(rng, N, S, H_enc)
    W_sq, W_a = _t(rng, H, H, scale=0.5), _t(rng, H, H_enc, scale=0.5)
    W_q, W_k, v_a = _t(rng, H, A, scale=0.5), _t(rng, H_enc, A, scale=0.5), _t(rng, A)
    scaled = "It is divided by sqrt(H): Luong's scores are not scaled (that is the Transformer's)."

    dot = (H_sq * h_t[:, None, :]).sum(-1)
    _check_kind(fn, "dot", h_t, H_sq, {}, dot, [(dot / math.sqrt(H), scaled)], "")

    def general(W, Hs):
        return (Hs * torch.einsum("nh,hk->nk", h_t, W)[:, None, :]).sum(-1)

    for W, Hs, where in ((W_sq, H_sq, ", H_enc = H"), (W_a, H_s, f", H_enc = {H_enc} != H")):
        want = general(W, Hs)
        causes = [(want / math.sqrt(H), scaled)]
        if Hs is H_sq:
            causes += [(general(W.T, Hs), "W_a is used transposed: the score is (h_t W_a) . h_s, "
                        "h_t (N, H) times W_a (H, H_enc)."),
                       (dot, "W_a is not used: that is the dot score.")]  # fmt: skip
        _check_kind(fn, "general", h_t, Hs, {"W_a": W}, want, causes, where)

    pre = torch.einsum("nh,ha->na", h_t, W_q)[:, None, :] + torch.einsum("nsk,ka->nsa", H_s, W_k)
    want = (torch.tanh(pre) * v_a).sum(-1)
    causes = [
        ((pre * v_a).sum(-1), "tanh is missing: v_a . tanh(h_t W_q + h_s W_k)."),
        (torch.tanh(pre).sum(-1), "It sums the features of tanh(...): they are weighted by v_a "
         "(a dot product with v_a)."),
        (torch.tanh((pre * v_a).sum(-1)), "tanh is applied after v_a: v_a . tanh(...), "
         "tanh inside."),
        (want / math.sqrt(H), scaled),
    ]  # fmt: skip
    params = {"W_q": W_q, "W_k": W_k, "v_a": v_a}
    _check_kind(fn, "concat", h_t, H_s, params, want, causes, f", A = {A}")

    try:
        out = fn("bogus", h_t.clone(), H_sq.clone(), {})
    except NotImplementedError:
        raise
    except Exception:  # noqa: BLE001 - any exception is the right answer
        out = None
    else:
        raise fail(f"luong_scores('bogus', ...) returned a {describe(out)}, expected an exception.",
                   "Raise a ValueError for an unknown kind, so a typo ('genral') fails loudly "
                   "instead of training with some other score.")  # fmt: skip

    def project(x, W):
        return torch.einsum("...h,ha->...a", x, W)

    references = {
        "dot": (dict(h_t=h_t, H_s=H_sq), lambda t: (t["H_s"] * t["h_t"][:, None]).sum(-1)),
        "general": (dict(h_t=h_t, H_s=H_s, W_a=W_a),
                    lambda t: (t["H_s"] * project(t["h_t"], t["W_a"])[:, None]).sum(-1)),
        "concat": (dict(h_t=h_t, H_s=H_s, W_q=W_q, W_k=W_k, v_a=v_a),
                   lambda t: (torch.tanh(project(t["h_t"], t["W_q"])[:, None]
                                         + project(t["H_s"], t["W_k"])) * t["v_a"]).sum(-1)),
    }  # fmt: skip
    for kind, (tensors, reference) in references.items():
        leaves = _leaves(tensors)

        def student(t, kind=kind):
            params = {k: v for k, v in t.items() if k not in ("h_t", "H_s")}
            return (call_unchanged(fn, "luong_scores", kind, t["h_t"], t["H_s"], params),)

        if keeps_graph(fn):  # the grader's stand-in returns values: gradients in the notebook
            _check_gradients(f"luong_scores({kind!r})", student, lambda t, r=reference: (r(t),),
                             leaves, ("the scores",), rng)  # fmt: skip
    passed(f"luong_scores: the dot, general (square and H_enc = {H_enc} != H = {H}) and concat "
           "scores (N, S) match the reference; an unknown kind raises.")  # fmt: skip


# ------------------------------------------------------------------ attend


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """exp(s - max) over the real tokens, divided by their sum (0 on the padding)."""
    s = scores - scores.masked_fill(~mask, -1e300).amax(dim, keepdim=True)
    e = torch.where(mask, torch.exp(torch.where(mask, s, torch.zeros_like(s))), 0.0)
    return e / e.sum(dim, keepdim=True)


def _check_weights(label: str, got, want, scores, mask) -> None:
    """The weights (N, S): known wrong variants, then 0 on the padding and rows summing to 1."""
    got = _tensor(label, got)
    if tuple(got.shape) == tuple(want.shape):
        bad = ~torch.isfinite(got)
        full = mask.all(1)
        if bad.any() and bool(bad.any(1).eq(full).all()) and not bool(full.all()):
            raise fail(f"{label} is NaN in the rows without padding.", "The mask is inverted: "
                       "True marks the real tokens; fill the positions where mask is False.")  # fmt: skip
    soft = torch.softmax(scores, 1)
    causes = [
        (torch.softmax(scores.masked_fill(~mask, -torch.inf), 0), "The softmax runs over the "
         "batch (dim 0): it runs over the source positions (dim 1)."),
        (soft, "The mask is ignored: the padding gets weight (fill it with -inf before the "
         "softmax)."),
        (soft * mask, "The mask is applied after the softmax without renormalising: the rows "
         "no longer sum to 1 (mask the scores with -inf before the softmax)."),
        (torch.softmax(scores.masked_fill(mask, -1e300), 1), "The mask is inverted: True "
         "marks the real tokens; fill the positions where mask is False."),
        (torch.softmax(scores * mask, 1), "The padding's scores are set to 0, which still gets "
         "weight exp(0): fill them with -inf."),
    ]  # fmt: skip
    g = got.detach().double() if got.dtype.is_floating_point else got
    if g.shape == want.shape and torch.isfinite(g).all() and got.dtype == want.dtype:
        if not any(float((g - v).abs().max()) < 1e-6 for v, _ in causes):
            pad = float(g.masked_fill(mask, 0).abs().max())
            if pad > 1e-12:
                raise fail(f"{label} is not 0 on the padding: up to {pad:.2g}.",
                           "Fill the padded scores with -inf before the softmax.")  # fmt: skip
            sums = g.sum(1)
            if float((sums - 1).abs().max()) > 1e-9:
                i = int((sums - 1).abs().argmax())
                raise fail(f"{label}: row {i} sums to {float(sums[i]):.6g}, expected 1.",
                           "A softmax over the source positions (dim 1) of each row.")  # fmt: skip
    compare(label, got, want.numpy(), threshold=THRESHOLD,
            causes=[Cause(v.numpy(), why) for v, why in causes],
            shape_hint="The weights are (N, S), like the scores.")  # fmt: skip


def check_attend(fn: Callable, *, N: int = 4, S: int = 6, H: int = 3, seed: int = 8):
    """Check ``attend(scores, mask, H_s) -> (context (N, H), weights (N, S))``: the masked
    softmax (exactly 0 on the padding, rows summing to 1) and the weighted sum of H_s."""
    rng = seeded(seed)
    mask = _random_mask(rng, N, S)
    scores, H_s = _t(rng, N, S, scale=2.0), _t(rng, N, S, H)
    out = unpack(call_unchanged(fn, "attend", scores, mask, H_s), "attend", ("context", "weights"))
    want = _masked_softmax(scores, mask)
    if tuple(getattr(out[0], "shape", ())) == (N, S) and tuple(getattr(out[1], "shape", ())) == (
        N, H) and S != H:  # fmt: skip
        raise fail("attend returned (weights, context): the order is (context, weights).")
    _check_weights(f"weights (N = {N}, S = {S})", out[1], want, scores, mask)
    soft = torch.softmax(scores, 1)
    context = _tensor("context", out[0])
    hint = {(N, 1, H): "context is (N, 1, H): squeeze the middle axis.",
            (N, S, H): "context is (N, S, H): sum the weighted H_s over the positions (dim 1).",
            (N, S): "context is (N, S): it is the weighted sum of H_s's vectors, (N, H)."}  # fmt: skip
    compare("context", context, torch.einsum("ns,nsh->nh", want, H_s).numpy(), threshold=THRESHOLD,
            causes=[Cause(torch.einsum("ns,nsh->nh", soft, H_s).numpy(), "context is computed "
                          "from the unmasked weights: use the masked ones it returns."),
                    Cause((H_s * mask[..., None]).sum(1).numpy(), "context is the sum of the "
                          "real H_s vectors: weight them by the attention weights."),
                    Cause(H_s.mean(1).numpy(), "context is the mean of H_s: weight the vectors "
                          "by the attention weights.")],
            shape_hint=hint.get(tuple(context.shape), "context is (N, H): one vector per row."))  # fmt: skip
    shift = 1000.0  # a softmax does not change when a constant is added to its scores
    big = _tensor("weights", unpack(call_unchanged(fn, "attend", scores + shift, mask, H_s),
                                    "attend", ("context", "weights"))[1])  # fmt: skip
    if not bool(torch.isfinite(big).all()) or float((big.double() - want).abs().max()) > 1e-6:
        raise fail(f"With the scores plus {shift:g} (which changes no softmax) the weights are "
                   f"{'not finite' if not bool(torch.isfinite(big).all()) else 'different'}: "
                   "exp overflows.", "Subtract each row's largest real score before exp (or "
                   "fill the padding with -inf and call torch.softmax, which does it).")  # fmt: skip

    def reference(t):
        weights = _masked_softmax(t["scores"], mask)
        return torch.einsum("ns,nsh->nh", weights, t["H_s"]), weights

    if keeps_graph(fn):  # the grader's stand-in returns values: gradients in the notebook
        _check_gradients("attend",
                         lambda t: call_unchanged(fn, "attend", t["scores"], mask, t["H_s"]),
                         reference, _leaves({"scores": scores, "H_s": H_s}),
                         ("context", "weights"), rng)  # fmt: skip
    passed(f"attend: the weights are the softmax over the real tokens (0 on the padding, rows "
           f"summing to 1; lengths {S}, 1 and others) and context = weights @ H_s.")  # fmt: skip


# ------------------------------------------------------------------ decoder_step


def _gru(x, h, W_ih, W_hh, b_ih, b_hh, *, old_order=False):
    """The GRU cell written out, gates in PyTorch's order r, z, n."""
    H = h.shape[1]
    gi, gh = x @ W_ih.T + b_ih, h @ W_hh.T + b_hh
    r = torch.sigmoid(gi[:, :H] + gh[:, :H])
    z = torch.sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])
    n = torch.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
    return z * n + (1 - z) * h if old_order else (1 - z) * n + z * h


def _step(p, e_t, h_prev, ht_prev, H_s, mask, *, feed="h_tilde", query="h_t", order="ch",
          tanh=True, use_mask=True, old_order=False, state="h_prev"):  # fmt: skip
    """The reference decoder step; the keywords give the known wrong variants."""
    fed = {"h_tilde": ht_prev, "zeros": torch.zeros_like(ht_prev), "h_prev": h_prev,
           "first": ht_prev}[feed]  # fmt: skip
    x = torch.cat([fed, e_t] if feed == "first" else [e_t, fed], dim=1)
    h = h_prev if state == "h_prev" else ht_prev
    h_t = _gru(x, h, p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"], old_order=old_order)
    q = h_t if query == "h_t" else h_prev
    scores = (H_s * (q @ p["W_a"])[:, None, :]).sum(-1)
    weights = _masked_softmax(scores, mask if use_mask else torch.ones_like(mask))
    c = (weights[..., None] * H_s).sum(1)
    joined = torch.cat([c, h_t] if order == "ch" else [h_t, c], dim=1) @ p["W_c"].T
    return h_t, torch.tanh(joined) if tanh else joined, weights


def check_decoder_step(fn: Callable, *, N: int = 3, S: int = 4, E: int = 3, H: int = 4, seed=9):
    """Check ``decoder_step(params, e_t, (h_prev, h_tilde_prev), H_s, mask) -> ((h_t,
    h_tilde_t), weights)`` against a GRU cell written out gate by gate, the general score
    from h_t, the masked softmax and h_tilde_t = tanh([c_t; h_t] W_c^T)."""
    rng = seeded(seed)
    shapes = {"W_ih": (3 * H, E + H), "W_hh": (3 * H, H), "b_ih": (3 * H,), "b_hh": (3 * H,),
              "W_a": (H, 2 * H), "W_c": (H, 3 * H)}  # fmt: skip
    p = {k: _t(rng, *s, scale=0.5) for k, s in shapes.items()}
    e_t, h_prev, ht_prev = _t(rng, N, E), _t(rng, N, H, scale=0.5), _t(rng, N, H, scale=0.5)
    H_s, mask = _t(rng, N, S, 2 * H), _random_mask(rng, N, S)
    args = (p, e_t, (h_prev, ht_prev), H_s, mask)
    out = unpack(
        call_unchanged(fn, "decoder_step", *args), "decoder_step", ("(h_t, h_tilde_t)", "weights")
    )
    state = unpack(out[0], "decoder_step's state", ("h_t", "h_tilde_t"))
    h_t, h_tilde, weights = _step(p, e_t, h_prev, ht_prev, H_s, mask)

    def var(**kw):
        return _step(p, e_t, h_prev, ht_prev, H_s, mask, **kw)

    fed = "Input feeding: the GRU reads [e_t; h_tilde_prev] (the previous attentional state)"
    h_causes = [
        (h_tilde, "The state is returned as (h_tilde_t, h_t): return (h_t, h_tilde_t)."),
        (var(feed="zeros")[0], f"{fed}, not zeros."),
        (var(feed="h_prev")[0], f"{fed}, not h_prev."),
        (var(feed="first")[0], "The GRU's input is [h_tilde_prev; e_t]: the order is "
         "[e_t; h_tilde_prev] (the embedding first)."),
        (var(state="h_tilde")[0], "The GRU's state is h_tilde_prev: it is h_prev (h_tilde_prev "
         "goes into its input, concatenated with e_t)."),
        (var(old_order=True)[0], "The GRU's update is h' = (1 - z) * n + z * h_prev "
         "(PyTorch's convention), not z * n + (1 - z) * h_prev."),
    ]  # fmt: skip
    compare(f"h_t (N = {N}, H = {H})", _tensor("h_t", state[0]), h_t.numpy(), threshold=THRESHOLD,
            causes=[Cause(v.numpy(), why) for v, why in h_causes],
            hint="h_t = GRU cell([e_t; h_tilde_prev], h_prev) with W_ih, W_hh, b_ih, b_hh "
            "(torch.gru_cell, gates r, z, n).")  # fmt: skip
    from_prev = "The attention reads h_prev: score the new state h_t against H_s."
    w_causes = [(var(query="h_prev")[2], from_prev),
                (var(use_mask=False)[2], "The mask is ignored: pass it on to attend.")]  # fmt: skip
    compare(f"weights (N = {N}, S = {S})", _tensor("weights", out[1]), weights.numpy(),
            threshold=THRESHOLD, causes=[Cause(v.numpy(), why) for v, why in w_causes],
            hint="The weights are attend's, over the general scores (h_t W_a) . h_s.")  # fmt: skip
    t_causes = [
        (h_t, "The state is returned as (h_tilde_t, h_t): return (h_t, h_tilde_t)."),
        (var(order="hc")[1], "The concatenation is [h_t; c_t]: W_c reads [c_t; h_t]."),
        (var(tanh=False)[1], "tanh is missing: h_tilde_t = tanh([c_t; h_t] W_c^T)."),
        (var(query="h_prev")[1], from_prev),
        (var(use_mask=False)[1], "The mask is ignored: pass it on to attend."),
    ]  # fmt: skip
    compare("h_tilde_t", _tensor("h_tilde_t", state[1]), h_tilde.numpy(), threshold=THRESHOLD,
            causes=[Cause(v.numpy(), why) for v, why in t_causes],
            hint="h_tilde_t = tanh(cat([c_t, h_t], dim=1) @ W_c.T), c_t from attend.")  # fmt: skip

    def student(t):
        params = {k: t[k] for k in p}
        step = call_unchanged(fn, "decoder_step", params, t["e_t"], (t["h_prev"], t["h_tilde_prev"]),
                              t["H_s"], mask)  # fmt: skip
        return (*step[0], step[1])

    def reference(t):
        return _step(t, t["e_t"], t["h_prev"], t["h_tilde_prev"], t["H_s"], mask)

    tensors = {**p, "e_t": e_t, "h_prev": h_prev, "h_tilde_prev": ht_prev, "H_s": H_s}
    if keeps_graph(fn):  # the grader's stand-in returns values: gradients in the notebook
        _check_gradients("decoder_step", student, reference, _leaves(tensors),
                         ("h_t", "h_tilde_t", "weights"), rng)  # fmt: skip
    passed("decoder_step: h_t (a GRU cell on [e_t; h_tilde_prev]), the weights (general score "
           "from h_t, masked) and h_tilde_t = tanh([c_t; h_t] W_c^T) match the reference.")  # fmt: skip
