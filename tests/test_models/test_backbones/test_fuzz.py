"""Input fuzzing of every registered backbone.

Each small config of the contract test (``test_contract.SMALL``), under every
SuperViT budget, gets a seeded set of input sizes (below the minimum, the
minimum, odd, prime, extreme aspect ratios), batches of 1 and 2, in training
and in eval mode. The outcome must be either finite maps of the declared
shapes (``output_shape()``: ``ceil(H / stride)``) or our ``ValueError`` that
names the input size, never an error from deep inside torch and never NaN.
"""
import inspect
import math
import random

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from test_contract import BACKBONES, SMALL

# Budgets of SuperViT (token keeping rate, trunk input scale, sampling in
# training mode); the other backbones have none.
BUDGETS = {
    'SuperViT': [
        dict(),
        dict(keep_rate=0.7),
        dict(keep_rate=0.01),
        dict(input_scale=0.5),
        dict(input_scale=128 / 224, keep_rate=0.5),
        dict(input_scale=2.0),
        dict(train_keep_rates=(0.5, 1.0), train_input_scales=(0.1, 1.0)),
    ],
}
CASES = [
    pytest.param(cls, cfg, budget, id=f'{cls.__name__}-{i}-{budget}')
    for cls in BACKBONES for i, cfg in enumerate(SMALL[cls.__name__])
    for budget in BUDGETS.get(cls.__name__, [dict()])
]
FIRST = [
    pytest.param(cls, SMALL[cls.__name__][0], id=cls.__name__)
    for cls in BACKBONES
]


# tiny models: one intra-op thread (tests/conftest.py)
pytestmark = pytest.mark.usefixtures('single_thread')


def sizes(m):
    """Input sizes around the minimum side ``m``, drawn with a fixed seed."""
    rng = random.Random(0)
    odd = [(2 * rng.randrange(m // 2, 48) + 1, 2 * rng.randrange(m // 2, 48) +
            1) for _ in range(2)]
    return ([(m - 1, m), (m, m - 1),  # below the minimum
             (m, m),  # exactly the minimum
             (m + 1, 2 * m + 3)] + odd +  # odd
            [(17, 19), (97, 131)] +  # prime
            [(16, 1024), (1024, 16), (m, 257)])  # extreme aspect ratios


def expected_error(model, batch, hw):
    """The message part our ValueError must contain, or None for outputs.

    Batch norm in training mode cannot normalise a single value per channel:
    AlterNet and PatchConvNet run batch norms down to their largest output
    stride, SuperViT only in its stem (on at least 16x16 padded inputs).
    """
    h, w = hw
    m = model.min_input_size
    if h < m or w < m:
        return f'at least {m}x{m}, got {h}x{w}'
    stride = None if type(model).__name__ == 'SuperViT' else max(
        model.out_strides)
    bn_training = any(
        isinstance(mod, _BatchNorm) and mod.training
        for mod in model.modules())
    if stride and bn_training and batch * math.ceil(h / stride) * math.ceil(
            w / stride) == 1:
        return f'a batch of one {h}x{w} input gives 1x1 maps'
    return None


def check_outcome(model, x):
    batch, _, h, w = x.shape
    error = expected_error(model, batch, (h, w))
    if error is not None:
        with pytest.raises(ValueError) as err:
            model(x)
        assert error in str(err.value), (tuple(x.shape), str(err.value))
        return 'error'
    outs = model(x)
    spec = model.output_shape()
    assert len(outs) == len(spec)
    for out, s in zip(outs, spec.values()):
        assert tuple(out.shape) == (batch, s.channels, math.ceil(
            h / s.stride), math.ceil(w / s.stride)), tuple(x.shape)
        assert torch.isfinite(out).all(), tuple(x.shape)
    return 'ok'


@pytest.mark.parametrize('cls,cfg,budget', CASES)
def test_fuzz_sizes_batches_modes(cls, cfg, budget):
    torch.manual_seed(0)
    model = cls(**cfg, **budget)
    outcomes = []
    with torch.no_grad():
        for mode in (True, False):
            model.train(mode)
            for batch in (1, 2):
                for hw in sizes(cls.min_input_size):
                    outcomes.append(
                        check_outcome(model, torch.randn(batch, 3, *hw)))
    # both outcomes occur for every backbone (the minimum is > 0)
    assert 'ok' in outcomes and 'error' in outcomes


@pytest.mark.parametrize('cls,cfg', FIRST)
def test_channels_and_layout_errors_name_the_problem(cls, cfg):
    model = cls(**cfg).eval()
    c = model.in_channels
    for channels in (c - 1, c + 1):
        with pytest.raises(ValueError,
                           match=fr'expects {c} input channels '
                           fr'\(in_channels\), got {channels}'):
            model(torch.randn(1, channels, 32, 32))
    with pytest.raises(ValueError, match=r'expects an NCHW tensor, got '
                       r'\(3, 32, 32\)'):
        model(torch.randn(3, 32, 32))
    if 'in_channels' in inspect.signature(cls).parameters:
        gray = cls(**cfg, in_channels=1).eval()
        assert check_outcome(gray, torch.randn(2, 1, 33, 47)) == 'ok'
        with pytest.raises(ValueError, match=r'expects 1 input channels '
                           r'\(in_channels\), got 3'):
            gray(torch.randn(1, 3, 32, 32))


@pytest.mark.slow
@pytest.mark.parametrize('cls,cfg', FIRST)
def test_large_detection_input(cls, cfg):
    model = cls(**cfg)
    with torch.no_grad():
        for mode in (True, False):
            model.train(mode)
            assert check_outcome(model, torch.randn(1, 3, 1333, 800)) == 'ok'
