"""utils.checks.engine: the diagnosis engine every lab's checks share."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from utils.checks.engine import Cause, CheckError, as_array, call, compare, unpack

rng = np.random.default_rng(0)
WANT = rng.normal(size=(3, 3))


def test_call_passes_copies_and_returns_the_result():
    x = np.arange(3.0)
    assert call(lambda a: a * 2, "double", x).tolist() == [0.0, 2.0, 4.0]


def test_call_catches_a_change_in_place_and_names_the_argument():
    def scale(values, factor):
        values *= factor
        return values

    with pytest.raises(
        CheckError, match=r"scale changed its argument number 1 \(values\) in place"
    ):
        call(scale, "scale", np.ones(3), 2.0)


def test_call_turns_a_crash_into_a_message_with_the_inputs():
    with pytest.raises(
        CheckError, match=r"f raised ValueError: bad.*called with \(ndarray \(2, 3\)"
    ):
        call(lambda a: (_ for _ in ()).throw(ValueError("bad")), "f", np.zeros((2, 3)))


def test_call_explains_a_name_error():
    def f(a):
        return undefined_helper(a)  # noqa: F821

    with pytest.raises(CheckError, match="raised NameError.*run its cell first"):
        call(f, "f", 1)


def test_a_stub_stays_not_implemented_and_an_unfinished_helper_is_named():
    def helper(a):
        raise NotImplementedError

    def stub(a):
        raise NotImplementedError()

    def uses_helper(a):
        return helper(a)

    with pytest.raises(NotImplementedError, match="stub is not implemented yet"):
        call(stub, "stub", 1)
    with pytest.raises(NotImplementedError, match="uses_helper calls helper, which is not"):
        call(uses_helper, "uses_helper", 1)


def test_call_refuses_what_is_not_a_function():
    with pytest.raises(CheckError, match="expected the function f, got a int"):
        call(3, "f")


@pytest.mark.parametrize(
    ("out", "match"),
    [(None, "returned None.*forget to `return`"), (np.zeros(2), "expected the tuple \\(a, b\\)"),
     ((1, 2, 3), "returned 3 values, expected 2")],
)  # fmt: skip
def test_unpack_says_what_came_back(out, match):
    with pytest.raises(CheckError, match=match):
        unpack(out, "f", ("a", "b"))
    assert unpack((1, 2), "f", ("a", "b")) == (1, 2)


def test_as_array_accepts_tensors_and_refuses_lists():
    assert as_array("x", torch.ones(2)).tolist() == [1.0, 1.0]
    with pytest.raises(CheckError, match="x is a list"):
        as_array("x", [1.0])


def test_compare_passes_within_the_threshold_and_returns_the_error():
    assert compare("W", WANT * (1 + 1e-12), WANT, threshold=1e-7) < 1e-10


def test_a_known_wrong_variant_gives_its_cause_before_any_generic_one():
    causes = [Cause(2 * WANT, "It is doubled: the factor 1/2 is missing.")]
    with pytest.raises(CheckError, match="relative error .* threshold 1e-07. It is doubled"):
        compare("W", 2 * WANT, WANT, threshold=1e-7, causes=causes)


@pytest.mark.parametrize(
    ("got", "match"),
    [
        (np.zeros((3, 3)), "all zeros"),
        (-WANT, "wrong sign"),
        (WANT.T, "transpose of the reference"),
        (3 * WANT, "reference times 3"),
    ],
)
def test_generic_causes(got, match):
    with pytest.raises(CheckError, match=match):
        compare("W", got, WANT, threshold=1e-7)


def test_no_known_cause_names_the_largest_difference_and_the_hint():
    got = WANT.copy()
    got[1, 2] += 1.0
    with pytest.raises(CheckError, match=r"index \(1, 2\).*Check the bias"):
        compare("W", got, WANT, threshold=1e-7, hint="Check the bias.")


def test_shape_nan_and_dtype_come_first():
    with pytest.raises(CheckError, match="shape \\(3,\\), expected \\(3, 3\\).*Stack them"):
        compare("W", np.zeros(3), WANT, threshold=1e-7, shape_hint="Stack them.")
    with pytest.raises(CheckError, match="NaN"):
        compare("W", np.full((3, 3), np.nan), WANT, threshold=1e-7)
    with pytest.raises(CheckError, match="dtype float32, expected float64"):
        compare("W", WANT.astype(np.float32), WANT, threshold=1e-7)
    assert compare("W", WANT.astype(np.float32), WANT, threshold=1e-6, dtype=None) < 1e-6


def test_number_accepts_one_number_and_names_anything_else():
    from utils.checks.engine import number

    assert number("loss", np.array(2.5)) == 2.5 and number("loss", torch.tensor([3.0])) == 3.0
    with pytest.raises(CheckError, match="loss is None.*forget to `return`"):
        number("loss", None)
    with pytest.raises(CheckError, match=r"loss has shape \(2,\), expected one number"):
        number("loss", np.zeros(2))
    with pytest.raises(CheckError, match="loss is a dict, expected one number"):
        number("loss", {})


def test_check_unchanged_names_the_list_or_the_item_and_step():
    from utils.checks.engine import check_unchanged, snapshot

    caches = [(np.zeros(2), np.ones(2)), (np.zeros(2), np.ones(2))]
    items, before = list(caches), snapshot(caches)
    check_unchanged("f", caches, items, before, ("a", "b"))  # nothing changed
    caches[1][1][0] = 5.0
    with pytest.raises(
        CheckError, match=r"f changed b \(item 1\) of the cache of step t = 2 in place"
    ):
        check_unchanged("f", caches, items, before, ("a", "b"))
    with pytest.raises(CheckError, match="changed b .item 1. of the cache in place"):
        check_unchanged("f", caches, items, before, ("a", "b"), per_step=False)
    caches.pop()
    with pytest.raises(CheckError, match="changed the list caches in place"):
        check_unchanged("f", caches, items, before, ("a", "b"))


def test_check_cache_compares_item_by_item():
    from utils.checks.engine import check_cache

    want = (np.arange(3.0), np.ones(2))
    check_cache("cache", (np.arange(3.0), np.ones(2)), want, ("x_t", "h_t"))
    with pytest.raises(
        CheckError, match=r"cache is a ndarray \(3,\), expected the tuple of 2 \(x_t, h_t\)"
    ):
        check_cache("cache", np.zeros(3), want, ("x_t", "h_t"))
    with pytest.raises(CheckError, match=r"cache\[1\] \(h_t of step 2\) differs.*Keep the cache"):
        check_cache(
            "cache",
            (np.arange(3.0), np.array([1.0, 2.0])),
            want,
            ("x_t", "h_t"),
            "Keep the cache.",
            " of step 2",
        )


def test_numpy_only_refuses_tensors():
    from utils.checks.engine import numpy_only

    numpy_only("h_t", np.zeros(2))
    with pytest.raises(
        CheckError, match="h_t is a torch Tensor, expected a NumPy array.*NumPy only"
    ):
        numpy_only("h_t", torch.zeros(2))
