"""The public surface of the contract: signatures and defaults, settable
hyperparameters. (show_config, the CLI and the low-level wrappers: test_package.py.)"""

import inspect

import numpy as np
import pytest

import reference
from cases import CONTRACT_DEFAULTS, OPTIMISERS

import madam  # noqa: E402  (a broken build must fail the suite, not skip it)


@pytest.mark.parametrize("name", OPTIMISERS)
def test_signature_and_defaults(name):
    sig = inspect.signature(getattr(madam, name))
    got = {k: v.default for k, v in sig.parameters.items()}
    assert list(got)[0] == "params" and got.pop("params") is inspect.Parameter.empty
    assert got == {**CONTRACT_DEFAULTS[name], "nonfinite": "raise"}
    ref = {k: v.default for k, v in inspect.signature(reference.ALL[name]).parameters.items()}
    ref.pop("p")
    assert ref == CONTRACT_DEFAULTS[name]  # the references use the same defaults


@pytest.mark.parametrize("name", OPTIMISERS)
def test_hyperparameters_are_attributes(name):
    opt = getattr(madam, name)(np.ones(3))
    for key, value in CONTRACT_DEFAULTS[name].items():
        assert getattr(opt, key) == value, key
    assert opt.nonfinite == "raise" and opt.step_count == 0 and opt.skipped_steps == 0
    opt.lr = 5e-4
    assert opt.lr == 5e-4
    opt.step(np.ones(3))
    assert opt.step_count == 1


def test_changed_lr_takes_effect():
    p = np.zeros(2)
    opt = madam.SGD(p, lr=1.0)
    opt.step(np.ones(2))
    opt.lr = 0.25
    opt.step(np.ones(2))
    assert p.tolist() == [-1.25, -1.25]


def test_single_array_and_list_give_the_same_update():
    a, b = np.linspace(-1, 1, 6), np.linspace(-1, 1, 6)
    oa, ob = madam.Adam(a, lr=0.1), madam.Adam([b], lr=0.1)
    for k in range(3):
        oa.step(np.full(6, k + 1.0))
        ob.step([np.full(6, k + 1.0)])
    assert a.tobytes() == b.tobytes()

