"""Weight recipes of the golden tiny models (``tests/data/golden``).

A recipe (``<model>.weights.json``) lists the official state-dict keys and
shapes of a tiny model in order, each with a uniform range, plus the seed,
the official checkpoint layout and the SHA-256 of the drawn weights.
``tools/dev/make_golden.py`` writes recipes and computes the reference
outputs with these weights; ``conftest.py`` turns them back into checkpoints.
Plain numpy/torch, no pytest: the generator imports this file as well.
"""
import hashlib
import os.path as osp

import numpy as np
import torch

GOLDEN_DIR = osp.join(osp.dirname(osp.abspath(__file__)), 'data', 'golden')
RECIPE_FORMAT = 'mmsupervit-golden-weights/1'


def state_dict_digest(state_dict: dict) -> str:
    """SHA-256 of the tensors' little-endian bytes, in key order."""
    digest = hashlib.sha256()
    for key, value in state_dict.items():
        digest.update(key.encode())
        array = value.numpy()
        digest.update(array.astype(array.dtype.newbyteorder('<')).tobytes())
    return digest.hexdigest()


def recipe_state_dict(recipe: dict) -> dict:
    """Draw the state dict a weight recipe describes.

    Every tensor is drawn from one ``numpy.random.RandomState(seed)`` stream,
    in recipe order, as ``low + (high - low) * random_sample(numel)`` in
    float64, rounded to float32 (integer tensors are zeros). RandomState's
    stream is frozen by NumPy's compatibility policy (NEP 19) and this maths
    is exact IEEE arithmetic, so every platform gets the same bits.

    Args:
        recipe (dict): The parsed ``<model>.weights.json``.

    Returns:
        dict: The official state dict (float32 and int64 CPU tensors).
    """
    if recipe.get('format') != RECIPE_FORMAT:
        raise ValueError(f'unknown weight recipe format '
                         f'{recipe.get("format")!r}, '
                         f'expected {RECIPE_FORMAT!r}')
    stream = np.random.RandomState(recipe['seed'])
    state_dict = {}
    for key, shape, dtype, low, high in recipe['tensors']:
        if dtype == 'int64':
            state_dict[key] = torch.zeros(shape, dtype=torch.int64)
        elif dtype == 'float32':
            sample = low + (high - low) * stream.random_sample(
                int(np.prod(shape, dtype=np.int64)))
            state_dict[key] = torch.from_numpy(
                sample.astype(np.float32)).reshape(shape)
        else:
            raise ValueError(f'{key}: unsupported dtype {dtype!r}')
    return state_dict


def materialize_checkpoint(recipe: dict) -> dict:
    """Build the official-layout checkpoint a weight recipe describes.

    Args:
        recipe (dict): The parsed ``<model>.weights.json``.

    Returns:
        dict: The recipe's ``checkpoint`` dict with every ``"@state_dict"``
        value replaced by the state dict (one object for all of them).

    Raises:
        RuntimeError: If the drawn weights do not have the recipe's SHA-256,
            i.e. this NumPy draws another stream than the one the reference
            outputs were computed with.
    """
    state_dict = recipe_state_dict(recipe)
    digest = state_dict_digest(state_dict)
    if digest != recipe['sha256']:
        raise RuntimeError(
            f'the weights drawn from the recipe of {recipe["model"]} have '
            f'SHA-256 {digest}, the recipe records {recipe["sha256"]}')
    return {
        k: state_dict if v == '@state_dict' else v
        for k, v in recipe['checkpoint'].items()
    }


# The mmsupervit ``arch`` of each golden tiny model (the official
# constructors are listed in ``tests/data/README.md``): model name ->
# (backbone class name, arch dict). Every test that loads a golden
# checkpoint takes its configuration from here.
GOLDEN_ARCHS = {
    'supervit_deit_tiny': ('SuperViT',
                           dict(embed_dims=32, depth=12, num_heads=2)),
    'supervit_lvvit_tiny': ('SuperViT',
                            dict(base='lvvit-s', embed_dims=32, depth=12,
                                 num_heads=2)),
    'alternet_tiny': ('AlterNet',
                      dict(block='basic', num_blocks=(1, 2, 2, 2),
                           num_msa=(0, 1, 1, 1), heads=(3, 3, 3, 3))),
    'patchconvnet_tiny': ('PatchConvNet',
                          dict(embed_dims=64, depth=6,
                               layer_scale_init_value=1e-4)),
}


def golden_arch(name: str) -> dict:
    """A copy of the ``arch`` dict of golden model ``name``."""
    return dict(GOLDEN_ARCHS[name][1])
