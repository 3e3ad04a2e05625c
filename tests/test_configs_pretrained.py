"""Every dense config starts from ImageNet weights, or says `scratch`.

Nothing is downloaded: URLs are only compared with the official list, and
local files are looked up in an empty working directory.
"""
import os.path as osp

import pytest
from mmengine.registry import MODELS, init_default_scope

from _configs import DENSE_CONFIGS, load_config, reduced_backbone, rel

#: facebookresearch/deit README_patchconvnet.md / the project's design notes
OFFICIAL_URLS = {
    f'https://dl.fbaipublicfiles.com/deit/{a}_224_1k.pth'
    for a in ('s60', 's120', 'b60', 'b120')
}
#: Local files (no public URL), with the words their hint must contain.
LOCAL_FILES = {
    'pretrained/super_deit_s.pth': 'configs/supervit/README.md',
    'pretrained/super_lvvit_s.pth': 'configs/supervit/README.md',
    'pretrained/alternet-50_in1k.pth': 'ImageNet pretraining',
    'pretrained/alternet-101_in1k.pth': 'ImageNet pretraining',
}


def _init_cfg(path):
    return load_config(path).model.backbone.get('init_cfg')


@pytest.mark.parametrize('path', DENSE_CONFIGS,
                         ids=[rel(p) for p in DENSE_CONFIGS])
def test_pretrained_unless_scratch(path):
    init = _init_cfg(path)
    if 'scratch' in osp.basename(path):
        assert init is None, 'a scratch config must not load weights'
        return
    assert isinstance(init, dict) and init.get('type') == 'Pretrained', \
        f'{rel(path)} trains from scratch but its name does not say scratch'
    checkpoint = init['checkpoint']
    assert checkpoint in OFFICIAL_URLS or checkpoint in LOCAL_FILES, checkpoint
    arch = str(load_config(path).model.backbone.arch).lower()
    assert arch.replace('-', '_') in checkpoint.replace('-', '_'), \
        f'{checkpoint} does not match arch {arch}'


LOCAL = [p for p in DENSE_CONFIGS
         if (_init_cfg(p) or {}).get('checkpoint') in LOCAL_FILES]


def test_local_checkpoints_cover_supervit_and_alternet():
    families = {osp.basename(osp.dirname(p)) for p in LOCAL}
    assert families == {'supervit', 'alternet'}


@pytest.mark.parametrize('path', LOCAL, ids=[rel(p) for p in LOCAL])
def test_missing_local_checkpoint_stops_the_run(path, tmp_path, monkeypatch):
    """Initialising the model fails naming the file and how to make it."""
    cfg = load_config(path)
    init_default_scope(cfg.default_scope)
    checkpoint = cfg.model.backbone.init_cfg.checkpoint
    cfg.model.backbone = reduced_backbone(cfg.model.backbone)
    monkeypatch.chdir(tmp_path)  # the relative path does not exist here
    model = MODELS.build(cfg.model)
    with pytest.raises(FileNotFoundError) as info:
        model.init_weights()
    message = str(info.value)
    assert checkpoint in message and LOCAL_FILES[checkpoint] in message, \
        message


def test_hint_is_only_added_to_a_missing_file(tmp_path):
    """A present but broken file keeps its own error (no misleading hint)."""
    from mmsupervit.models.backbones import PatchConvNet
    from mmsupervit.models.utils.checkpoint import CheckpointError
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(b'not a checkpoint')
    net = PatchConvNet(
        arch=dict(embed_dims=16, depth=1),
        init_cfg=dict(type='Pretrained', checkpoint=str(bad),
                      hint='HINT TEXT'))
    with pytest.raises(CheckpointError) as info:
        net.init_weights()
    assert 'HINT TEXT' not in str(info.value)
