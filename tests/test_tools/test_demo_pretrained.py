"""The demo's pretrain -> fine-tune hand-over, without training: a demo
classifier's checkpoint, published and served over HTTP on 127.0.0.1 by
``tools/run_demo.py``'s helpers, initialises the backbone of every dense demo
config through ``init_cfg=dict(type='Pretrained', checkpoint=<url>,
prefix='backbone.')`` (mmengine's download into the torch hub cache, then the
backbone's own loader)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from _tool_helpers import REPO, load_tool

RUN_DEMO = osp.join(REPO, 'tools', 'run_demo.py')




@pytest.fixture(scope='module')
def demo():
    return load_tool(RUN_DEMO)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    home = tmp_path / 'torch_home'
    monkeypatch.setenv('TORCH_HOME', str(home))
    monkeypatch.setattr(torch.hub, '_hub_dir', None)  # follow TORCH_HOME
    return home


def _build(cfg_path, seed, extra=None):
    cfg = Config.fromfile(cfg_path)
    if extra:
        cfg.merge_from_dict(extra)
    init_default_scope(cfg.default_scope)
    from mmengine.registry import MODELS
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


@pytest.mark.parametrize('task, family', [
    ('seg', 'supervit'), ('seg', 'patchconvnet'), ('seg', 'alternet'),
    ('det', 'supervit'), ('det', 'patchconvnet')])
def test_served_classifier_initialises_dense_backbone(
        demo, task, family, tmp_path, torch_home):
    classifier = _build(demo.CLS_CONFIGS[family], seed=1)
    # the demo classifier runs on its 64x64 crops: 4 class scores
    with torch.no_grad():
        scores = classifier(torch.rand(2, 3, 64, 64), mode='tensor')
    assert scores.shape == (2, 4)
    raw = tmp_path / 'iter_1.pth'
    torch.save({'state_dict': classifier.state_dict(), 'meta': {'x': 1}},
               raw)
    served = tmp_path / 'served'
    path = demo.publish_checkpoint(str(raw), str(served), f'{family}-cls')
    name = osp.basename(path)
    assert name.startswith(f'{family}-cls_') and name.endswith('.pth')
    server, requests = demo.serve_directory(str(served))
    url = f'http://127.0.0.1:{server.server_address[1]}/{name}'
    try:
        dense = _build(demo.DENSE_CONFIGS[task][family], seed=2, extra={
            'model.backbone.init_cfg': dict(
                type='Pretrained', checkpoint=url, prefix='backbone.')})
    finally:
        server.shutdown()
        server.server_close()
    assert len(requests) == 1 and requests[0].startswith(f'"GET /{name} ')
    assert ' 200 ' in requests[0]
    # downloaded into the torch hub cache, byte for byte
    cached = torch_home / 'hub' / 'checkpoints' / name
    with open(path, 'rb') as a, open(cached, 'rb') as b:
        assert a.read() == b.read()
    # every backbone weight the classifier has is the classifier's
    expected = {k[len('backbone.'):]: v
                for k, v in classifier.state_dict().items()
                if k.startswith('backbone.')}
    got = dense.backbone.state_dict()
    shared = sorted(set(expected) & set(got))
    # the dense backbone has every parameter of the classifier's except
    # its classification-only parts; at least 95% of its weights come from
    # the checkpoint
    loaded = sum(got[k].numel() for k in shared
                 if got[k].dtype.is_floating_point)
    total = sum(v.numel() for v in got.values()
                if v.dtype.is_floating_point)
    assert loaded >= 0.95 * total, (loaded, total)
    for key in shared:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0,
                                   msg=key)


def test_publish_strips_training_state(demo, tmp_path):
    raw = tmp_path / 'iter_5.pth'
    torch.save({'state_dict': {'backbone.w': torch.ones(2)},
                'meta': {'seed': 0},
                'optimizer': {'state': {}}, 'message_hub': {}}, raw)
    a = demo.publish_checkpoint(str(raw), str(tmp_path / 'out'), 'x')
    b = demo.publish_checkpoint(str(raw), str(tmp_path / 'out'), 'x')
    assert a == b  # same content, same name
    ckpt = torch.load(a, weights_only=True)
    assert sorted(ckpt) == ['meta', 'state_dict']
    torch.save({'state_dict': {'backbone.w': torch.zeros(2)}, 'meta': {}},
               raw)
    assert demo.publish_checkpoint(str(raw), str(tmp_path / 'out'),
                                   'x') != a  # the hash is in the name
