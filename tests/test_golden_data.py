"""The committed golden data and the fixture that serves it
(``tests/conftest.py``, ``tests/data/README.md``)."""
import glob
import json
import os.path as osp

import pytest
import torch

from golden_weights import GOLDEN_DIR, materialize_checkpoint

RECIPES = sorted(glob.glob(osp.join(GOLDEN_DIR, '*.weights.json')))


def _recipe(name):
    with open(osp.join(GOLDEN_DIR, f'{name}.weights.json')) as f:
        return json.load(f)


def test_every_tiny_model_has_weights_and_references():
    names = [osp.basename(p)[:-len('.weights.json')] for p in RECIPES]
    assert names == ['alternet_tiny', 'patchconvnet_tiny',
                     'supervit_deit_tiny', 'supervit_lvvit_tiny']
    for name in names:
        assert osp.isfile(osp.join(GOLDEN_DIR, f'{name}.ref.pth'))


@pytest.mark.parametrize('name', ['supervit_lvvit_tiny', 'alternet_tiny'])
def test_checkpoint_has_the_official_layout(name, golden):
    recipe = _recipe(name)
    ckpt = torch.load(golden(f'{name}.ckpt.pth'), weights_only=True)
    assert set(ckpt) == set(recipe['checkpoint'])
    state_dict = ckpt['state_dict']
    assert [k for k, *_ in recipe['tensors']] == list(state_dict)
    for key, shape, dtype, low, high in recipe['tensors']:
        value = state_dict[key]
        assert list(value.shape) == shape and str(value.dtype) == (
            f'torch.{dtype}'), key
        if dtype == 'float32':
            assert low <= value.min() and value.max() <= high, key
    if name == 'supervit_lvvit_tiny':  # the same weights under both keys
        assert all(torch.equal(ckpt['state_dict_ema'][k], v)
                   for k, v in state_dict.items())


def test_a_changed_recipe_fails_its_digest():
    recipe = _recipe('patchconvnet_tiny')
    materialize_checkpoint(recipe)
    row = next(r for r in recipe['tensors'] if r[2] == 'float32')
    row[4] *= 1.01
    with pytest.raises(RuntimeError, match='patchconvnet_tiny have SHA-256'):
        materialize_checkpoint(recipe)


def test_missing_golden_file_is_an_error_not_a_skip(golden):
    with pytest.raises(FileNotFoundError, match='no_such.ckpt.pth'):
        golden('no_such.ckpt.pth')
