"""Lab 4: the check of the trained character model, ``char_log_probs(text)``.

The model the notebook trained lives in the student's kernel, so the grader calls this
function there (the lab lists it in ``kernel_functions``). The check sends text, keeps
it, and computes the loss itself: the mean of ``-log p(next character)`` in nats.

- ``source="validation"``: passages of Tiny Shakespeare's validation part (the last 10 %
  of the characters, never trained on).
- ``source="unseen"``: eight speeches from plays that are not in Tiny Shakespeare
  (Henry V, The Merchant of Venice, Twelfth Night, King Lear, Othello, Julius Caesar, A
  Midsummer Night's Dream), in the file's format. No lookup in the data file can
  predict them, so a function that looks its input up there (the validation text is in
  the file) gets no help; they are stored compressed, out of plain view.

Before the text goes out, 2 % of its letters are replaced by random letters (typos, drawn
with ``seeded``, so they change with every grading run), and the loss counts only the
characters that were not replaced. The check also holds each row to the characters
before it: row ``t`` may not change when text after position ``t`` changes; and the same
text must get the same answer twice (dropout off).
"""

from __future__ import annotations

import base64
import functools
import string
import zlib
from collections.abc import Callable

import numpy as np

from utils.checks.core import check_finite, passed, seeded
from utils.checks.engine import call_unchanged, fail, tensor

__all__ = ["check_char_log_probs", "shakespeare_split", "unseen_speeches"]

_UNSEEN = (
    "eNpdVk1z2zgMvfNXMCdflPwAZ3Y8aZptvMnGnXx0p0dahCTWEqmSlFX9+30Alex0c4hkEgRAvIcHPeyfvuj7u6fn"
    "7/rbVh18TXoIkfTkc9C5I32MZOqu0pZM1E105G2qdHg3vFaHqOs+JBLr2fS9nkY9u9zpMEV959vepY6P2yu193qE"
    "O7GNtEnah9w53+oU9JHqMFDSRg/Gq5sE95ZS1im7vveUsOOt7qbB9S4vW/VpynruyJcsewPT0CCBiB9hTtp5SQBp"
    "p0q9sqEbXDa5JGrq7ILnE/wru5bitXrJrmlWj8l5mnHTNA0DDHGnEicEW6nPLrWTw50b46L2Jk8omdy5M9FeNuaM"
    "0Buro2lRIQneo3DighZE15lidMcer2mkOl+pP/Cnvh6eX/c3Wz6hf06GL8opDhTrRTspF+oRjfMbZLHP2sYwjoS4"
    "JonzlnyGU7YAWGHQHZkzefU2hnKtsefyH8mTyd1Wu8xu8+x4sUe5r9krvyX22rkBp0zWrTvTCsD7UjYnSlu1eYWD"
    "wbVddoyWK2E+FiTECq1cK3cxeLJA15tYd9jLqAW79PCddB3D7K/VPV5TTWNGYVPHeLLbJkQkyqDRMIZoej2GmaLg"
    "q03OKOnEAAdtZpJ0B/MDWSyV+ocZh+wsGAdws/izILcVu4bpDccnsDGtaLzcf3883D5s1T1qJbU3+i+aGcG0A9K/"
    "LSJ/aYzYGg/CWTeQT6AYUwhvhKcBuYR2eB9Nkt0dIluhjhLWmYFvCY6B6TEXTn1szGTG4nE6/oArtfaobFrw0Ugc"
    "YN7D6XH5b3MgyQrdMVC5cB3C/41m5xkK3mXWo66glTL6tosOXQiAHPLdN3oJkx6jq096QjgbkJhUArwhu1OuWGQY"
    "gIu/m/RmarudXk3G4FLw6ncT62gnSaxGMwjTipvUsbysZpFA7JZ2BavPbw93+vD8sn86bBVSHKbkapBrpU2wDG4f"
    "zlRxC6CrwLEvIDUqo+lXzfICA5crITdXODbkMtiwkovbzIFbAw7D9Yl8VSoVOOErGJn33tSmxf8LZn7H9NJ2YY1r"
    "kDwktuL1musdNqj2sLBE6d6dSq5pJoKjMHlbFaeswNhJ0CA0sdFH40+c7NkBwQxUXzIA5wicDzqVX4OFAl1AfgPq"
    "fY2CiVqv7SoyEtZQPsysHkhqxuNI6DFaG+CBh8Pj3c0z1BaaWjFDmOTCn2iA/8ISW3dEp3Qhanch6nuhvgO42mQD"
    "q/yu3FC82vjAFE1jmLJ6hbILxB1EipvR1x1Uk32mTDT2bGpZEDZFO+tQI5A4T1M/wmWYivfc8UXzJf2iespSbhdx"
    "XH0zGGWXNXw6iomlIZjTZd1DF9kqdyg0xWPopZJYIoZk7hhrNJK9KKU4vN7fPT6CW/fArGE8otAJCkPXQIOV74wz"
    "8psHCW72c4L0oMk3vFjAzSEWRV+AeEOV+pNFemEGIDN+VmXOQMzk9slRy0+gkidPaeXEvpSMVYR4rqL2XouoRa5D"
    "pbk5ygRAqGNYZAabhc8XzTgTMhkgyz4XPZeoVhoiE7J370Pp9ublZf/2slV/wyWTPLAJ9E2byP0AqGJaJ6mT4vBc"
    "4KZpzNTn9dPhU5wy9/BKv3U6pyzjmWd5WUnUn/m+ktJcQghCfRHm4kYgvzWUTNwCK04K+PeWG14mEFbK9g7Cv7zv"
    "yrrn1oOdtJgMokhl/DCZ06onX99Y+CEkM88fY3kCSckDfyHgHAPh0IgYODjt1q5gfeJ5+GGCgB8EZ9PUT8OR+NuA"
    "5xGSc71QA98SZycTAXJiRW5MvFI3Qm14hPSfiijacmAAeZ5KV+vFUW+ZzRzByFQbKvVFvgWKtBbBHCPhU8TKvUR+"
    "8bESoGMzaz8y57Sv1L/ly3xt"
)


@functools.cache
def shakespeare_split() -> tuple[str, str, tuple[str, ...]]:
    """``(train, validation, chars)``: the first 90 % of Tiny Shakespeare's characters, the
    last 10 %, and the sorted vocabulary of the whole text (the lab's split, nanoGPT's)."""
    from utils.data import load_dataset

    text = load_dataset("tinyshakespeare", progress=False)
    n = int(0.9 * len(text))
    return text[:n], text[n:], tuple(sorted(set(text)))


def unseen_speeches() -> list[str]:
    """The eight speeches from plays that are not in Tiny Shakespeare (the hidden text)."""
    text = zlib.decompress(base64.b64decode("".join(_UNSEEN))).decode("utf-8")
    return [s.strip("\n") + "\n" for s in text.split("====")]


def _with_typos(text: str, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """``text`` with 2 % of its letters replaced by random letters, and a mask (True: the
    character is the original one)."""
    chars = np.array(list(text))
    letters = np.flatnonzero(np.char.isalpha(chars))
    typos = rng.choice(letters, size=len(letters) // 50, replace=False)
    chars[typos] = rng.choice(list(string.ascii_lowercase), size=len(typos))
    keep = np.ones(len(chars), bool)
    keep[typos] = False
    return "".join(chars.tolist()), keep


def _texts(source: str, seed: int, count: int, length: int) -> list[tuple[str, np.ndarray]]:
    rng = seeded(seed)
    if source == "unseen":
        return [_with_typos(s, rng) for s in unseen_speeches()]
    _, val, _ = shakespeare_split()
    starts = [i + 1 for i in range(len(val) - length) if val[i] == "\n"]
    picks = np.sort(rng.choice(starts, size=count, replace=False))
    return [_with_typos(val[s : s + length], rng) for s in picks]


def _log_probs(fn: Callable, text: str, V: int) -> np.ndarray:
    out = call_unchanged(fn, "char_log_probs", text)
    lp = tensor("char_log_probs(text)", out, (len(text), V),
                f"One row per character of the text ({len(text)}), one column per character of "
                f"the vocabulary ({V}): row t is the distribution of character t + 1.").double().numpy()  # fmt: skip
    check_finite("char_log_probs(text)", lp)
    norm = np.logaddexp.reduce(lp, axis=1)
    if not np.allclose(norm, 0, atol=1e-3):
        hint = ("They are probabilities: return their logarithm (F.log_softmax of the logits)."
                if np.allclose(lp.sum(axis=1), 1, atol=1e-3) else
                "They look like raw scores: apply F.log_softmax over the vocabulary.")  # fmt: skip
        raise fail("the rows of char_log_probs(text) are not log-probabilities: exp(row) sums to "
                   f"{np.exp(norm[:3]).round(4).tolist()}..., expected 1.", hint)  # fmt: skip
    return lp


_WHAT = {"validation": "validation passages", "unseen": "speeches from plays not in the file"}


def check_char_log_probs(fn: Callable, *, source: str = "validation", count: int = 4,
                         length: int = 400, seed: int = 0, max_loss: float | None = None) -> None:  # fmt: skip
    """Check ``char_log_probs(text) -> (len(text), V)`` log-probabilities of the next character
    after each prefix, on ``source`` text with typos (``count`` passages of ``length``
    characters for ``"validation"``); with ``max_loss``, the mean loss (nats per character)
    must be at most ``max_loss``."""
    _, _, chars = shakespeare_split()
    V, stoi = len(chars), {c: i for i, c in enumerate(chars)}
    texts = _texts(source, seed, count, length)
    first = texts[0][0]
    lp = _log_probs(fn, first, V)
    again = _log_probs(fn, first, V)
    if not np.allclose(again, lp, atol=1e-5):
        raise fail("char_log_probs gave different log-probabilities for the same text on a second "
                   f"call (row 0: {lp[0, :3].round(4).tolist()}... then "
                   f"{again[0, :3].round(4).tolist()}...).", "Put the model in eval mode "
                   "(model.eval()) inside the function, so that dropout is off.")  # fmt: skip
    cut = len(first) - len(first) // 3
    lp2 = _log_probs(fn, first[:cut] + "".join(reversed(first[cut:])), V)
    moved = np.flatnonzero(np.abs(lp2[:cut] - lp[:cut]).max(axis=1) > 1e-4)
    if len(moved):
        raise fail(f"row {moved[0]} of char_log_probs changed when only characters after position "
                   f"{cut - 1} changed.", "Row t must depend on text[:t + 1] only: run the model "
                   "forward over the text (one direction, no look-ahead) and read the output "
                   "at each position.")  # fmt: skip
    nll, same = [], []
    for i, (text, keep) in enumerate(texts):
        rows = lp if i == 0 else _log_probs(fn, text, V)
        ids = np.array([stoi[c] for c in text])
        nll.append(-rows[np.arange(len(text) - 1), ids[1:]][keep[1:]])
        same.append(-rows[np.arange(len(text) - 1), ids[:-1]][keep[1:]])
    loss, n = float(np.concatenate(nll).mean()), sum(len(x) for x in nll)
    where = f"{n} characters of {len(texts)} {_WHAT[source]} with typos"
    if max_loss is None:
        passed(f"char_log_probs: (len(text), {V}) log-probabilities, each row from the text before "
               f"it; {loss:.3f} nats per character on {where}.")  # fmt: skip
        return
    if loss > max_loss:
        hint = ("Row t scores the character at t, not the next one: row t is the distribution "
                "of character t + 1, predicted from text[:t + 1]."
                if float(np.concatenate(same).mean()) < loss else
                "Is the trained model used, in eval mode, with the lab's vocabulary (stoi)?")  # fmt: skip
        raise fail(
            f"char_log_probs: {loss:.3f} nats per character on {where}, above {max_loss}.", hint
        )
    passed(f"char_log_probs: {loss:.3f} nats per character on {where} (pass at {max_loss}).")
