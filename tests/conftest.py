"""Shared test fixtures.

The golden reference data (outputs of the official implementations) lives in
``../shared/golden`` beside the checkout; set ``MMSUPERVIT_GOLDEN`` to use
another folder. Tests that need it skip with a clear reason when it is absent.
"""
import os
import os.path as osp

import pytest
import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
GOLDEN_DIR = os.environ.get(
    'MMSUPERVIT_GOLDEN', osp.join(osp.dirname(REPO_ROOT), 'shared', 'golden'))


def golden_path(name: str) -> str:
    """Path of a golden file; skips the calling test when it is missing."""
    path = osp.join(GOLDEN_DIR, name)
    if not osp.exists(path):
        pytest.skip(f'golden file {name} not found in {GOLDEN_DIR} '
                    '(expected ../shared/golden beside the checkout, or set '
                    'MMSUPERVIT_GOLDEN)')
    return path


@pytest.fixture
def golden():
    """The ``golden_path`` helper as a fixture."""
    return golden_path


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
