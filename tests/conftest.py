"""Shared test fixtures.

The golden reference data (outputs of the official implementations, see
``tests/data/README.md``) is committed in ``tests/data/golden``. A tiny
official-layout checkpoint is stored there as a weight recipe
(``<model>.weights.json``, see ``golden_weights.py``) and written out as
``<model>.ckpt.pth`` on first use in a session.
"""
import json
import os.path as osp

import pytest
import torch

from golden_weights import GOLDEN_DIR, materialize_checkpoint


@pytest.fixture(scope='session')
def golden(tmp_path_factory):
    """``golden(name)``: the path of a golden file.

    ``<model>.ckpt.pth`` is written from ``<model>.weights.json`` into a
    session temporary folder. A missing file is an error, never a skip: the
    data is part of the repository.
    """
    cache = tmp_path_factory.mktemp('golden_checkpoints')

    def path(name: str) -> str:
        stored = osp.join(GOLDEN_DIR, name)
        if osp.exists(stored):
            return stored
        if name.endswith('.ckpt.pth'):
            recipe_file = stored[:-len('.ckpt.pth')] + '.weights.json'
            if osp.exists(recipe_file):
                built = cache / name
                if not built.exists():
                    with open(recipe_file) as f:
                        recipe = json.load(f)
                    torch.save(materialize_checkpoint(recipe), built)
                return str(built)
        raise FileNotFoundError(
            f'golden file {name} is missing from {GOLDEN_DIR}; the folder '
            'is part of the repository (tools/dev/make_golden.py writes it)')

    return path


@pytest.fixture(scope='module')
def single_thread():
    """One intra-op thread for a module of tiny models: on a loaded machine
    the threads cost far more in synchronisation than they save."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _isolate_default_scope():
    """Undo the mmengine default scope a test sets.

    ``init_default_scope('mmseg')`` (and every Runner) leaves a process-wide
    default scope behind; builds in later tests would then look our classes
    up in mmseg's or mmdet's registry. Each test starts from the state before.
    """
    from mmengine.registry import DefaultScope
    saved = dict(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'slow: end-to-end runs (seconds to minutes); '
        'deselect with -m "not slow"')
