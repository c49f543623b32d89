"""One keyword set for the max-min entry points: MaxMinOptions, keywords on top, same numbers."""

import inspect
from dataclasses import fields

import numpy as np
import pytest

from simulator.policy import MaxMinOptions, maxmin_from_rewards, maxmin_policy


def _same(a, b):
    for name in ("pi", "weights", "utilities", "gap_history", "value_history"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert (a.value, a.duality_gap, a.n_iter, a.method) == (b.value, b.duality_gap, b.n_iter,
                                                            b.method)


def test_options_object_and_keywords_are_the_same_call(env, thetas):
    opts = MaxMinOptions(normalize=None, tol=1e-10, n_iter=37, step_size=0.4)
    for objective in ("exact", "algorithm1", "pointwise"):
        by_kw = maxmin_policy(env, thetas, 0.7, objective, normalize=None, tol=1e-10, n_iter=37,
                              step_size=0.4)
        _same(maxmin_policy(env, thetas, 0.7, objective, options=opts), by_kw)
        r = env.rewards(thetas)
        _same(maxmin_from_rewards(env, r, 0.7, objective, options=opts),
              maxmin_from_rewards(env, r, 0.7, objective, normalize=None, tol=1e-10, n_iter=37,
                                  step_size=0.4))
    # keywords override the options object
    a = maxmin_policy(env, thetas, 0.7, "algorithm1", options=opts, n_iter=5)
    assert a.n_iter == 5 and a.normalize is None
    assert opts.replace(n_iter=5) == MaxMinOptions(normalize=None, tol=1e-10, n_iter=5,
                                                   step_size=0.4)


def test_one_signature_for_both_entry_points():
    names = [f.name for f in fields(MaxMinOptions)]
    for fn in (maxmin_policy, maxmin_from_rewards):
        params = inspect.signature(fn).parameters
        assert list(params)[-len(names):] == names
        for f in fields(MaxMinOptions):
            assert params[f.name].default == f.default
            assert params[f.name].kind is inspect.Parameter.KEYWORD_ONLY


def test_unknown_keyword_and_bad_options(env, thetas):
    with pytest.raises(TypeError, match="tolerance"):
        maxmin_policy(env, thetas, 1.0, tolerance=1e-3)
    with pytest.raises(ValueError, match="options"):
        maxmin_policy(env, thetas, 1.0, options={"tol": 1e-3})
    with pytest.raises(ValueError, match="tol"):
        maxmin_policy(env, thetas, 1.0, options=MaxMinOptions(tol=-1.0))
