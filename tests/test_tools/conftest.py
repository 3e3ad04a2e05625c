"""Fixtures of the tool tests."""
import pytest


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory):
    """8 training and 2 validation images in both layouts."""
    from mmsupervit.datasets.demo_data import generate_demo_data
    root = str(tmp_path_factory.mktemp('demo_data'))
    generate_demo_data(root, num_train=8, num_val=2, seed=0)
    return root
