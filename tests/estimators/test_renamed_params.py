"""Issue 13 item 7: one vocabulary. ``SharedLoRA(k)`` (was ``rank``) and
``EMMixture(n_clusters)`` (was ``n_groups``): the old keywords are deprecated aliases that give
bit-identical fits with a FutureWarning naming the new one; both given is an error naming both;
the back-end names are defined once."""

import warnings

import numpy as np
import pytest

from simulator import Population
from simulator.estimators import EMMixture, SharedLoRA
from simulator.validation import InvalidParameterError

DATA = Population.shared(4, 2, [0.5, 0.5], seed=3).sample(300, seed=4)

CASES = {  # class, new keyword, old keyword, value, other hyperparameters (kept small: fast)
    "SharedLoRA": (SharedLoRA, "k", "rank", 2, {"max_iter": 50, "seed": 1}),
    "EMMixture": (EMMixture, "n_clusters", "n_groups", 2, {"n_restarts": 1, "max_iter": 20,
                                                          "seed": 1}),
}
FITTED = ("theta_", "objective_", "n_iter_")


@pytest.mark.parametrize("name", CASES)
def test_alias_fit_is_bit_identical_and_warns_naming_the_new_keyword(name):
    cls, new, old, value, kw = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new keyword warns about nothing
        a = cls(**{new: value}, **kw).fit(DATA)
    with pytest.warns(FutureWarning, match=rf"{old}=\.\.\.\) is deprecated; use {new}=") as rec:
        b = cls(**{old: value}, **kw).fit(DATA)
    assert rec[0].filename == __file__  # the warning points at the caller's line
    for attr in FITTED:
        np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))
    # positional use (the old first argument) is the new keyword, silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = cls(value, **kw).fit(DATA)
    np.testing.assert_array_equal(a.theta_, c.theta_)


@pytest.mark.parametrize("name", CASES)
def test_both_keywords_is_an_error_naming_both(name):
    cls, new, old, value, kw = CASES[name]
    with pytest.raises(InvalidParameterError) as info:
        cls(**{new: value, old: value}, **kw).fit(DATA)
    msg = str(info.value)
    assert f"{new} = {value}" in msg and f"{old} = {value}" in msg and "deprecated" in msg


@pytest.mark.parametrize("name", CASES)
def test_neither_keyword_is_an_error_naming_the_new_one(name):
    cls, new, _old, _value, kw = CASES[name]
    with pytest.raises(InvalidParameterError, match=rf"^{new} is required"):
        cls(**kw).fit(DATA)


@pytest.mark.parametrize("name", CASES)
def test_bad_alias_value_names_the_alias(name):
    cls, _new, old, _value, kw = CASES[name]
    with pytest.raises(InvalidParameterError, match=rf"^{old} must be an integer"):
        cls(**{old: 1.5}, **kw).fit(DATA)


def test_sharedlora_bounds_name_k():
    with pytest.raises(InvalidParameterError, match=r"^k must be <= d = 4; got k = 5"):
        SharedLoRA(5).fit(DATA)
    with pytest.raises(InvalidParameterError, match=r"^k must be <= the number of units"):
        SharedLoRA(3).fit(DATA)  # 2 groups


def test_get_params_and_clone_carry_both_names():
    sklearn_base = pytest.importorskip("sklearn.base")
    est = SharedLoRA(rank=2)
    assert est.get_params()["k"] is None and est.get_params()["rank"] == 2
    twin = sklearn_base.clone(est)
    assert (twin.k, twin.rank) == (None, 2)
    em = EMMixture(n_groups=3)
    assert sklearn_base.clone(em).get_params()["n_groups"] == 3


def test_backend_names_are_defined_once():
    from simulator import kernels
    from simulator.estimators import bt, em, mle, sharedrep

    assert kernels.BACKENDS == ("numba", "numpy", "torch")
    assert bt.BACKENDS is kernels.BACKENDS and sharedrep.BACKENDS is kernels.BACKENDS
    assert mle.BACKENDS is kernels.BACKENDS
    assert em.EM_BACKENDS == ("numba", "torch") and set(em.EM_BACKENDS) < set(kernels.BACKENDS)
    with pytest.raises(InvalidParameterError, match=r"backend must be one of \('numba', 'torch'\)"):
        EMMixture(2, backend="numpy").fit(DATA)
