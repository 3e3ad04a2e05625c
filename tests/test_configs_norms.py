"""Batch norms of the 8xb2 configs: SyncBN where BN trains at 2 images per
GPU, frozen statistics where the config keeps ImageNet BN fixed, plain BN in
the CPU demos; SyncBN runs in a single CPU process (as BN) and in
distributed CPU runs (synchronised over gloo)."""
import os.path as osp

import pytest
import torch
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner
from torch.nn.modules.batchnorm import SyncBatchNorm, _BatchNorm

from _configs import (CONFIGS, DENSE_CONFIGS, REPO, det_data, load_config,
                      reduced_backbone, rel, seg_data, small_input,
                      strip_pretrained, total_loss)
from mmsupervit.engine.cpu_distributed import (CPUSyncBatchNorm,
                                               convert_cpu_sync_batchnorm)
from mmsupervit.utils import runner_utils


def _meta_model(path):
    cfg = load_config(path)
    init_default_scope(cfg.default_scope)
    with torch.device('meta'):
        return MODELS.build(cfg.model)


@pytest.mark.parametrize('path', CONFIGS, ids=[rel(p) for p in CONFIGS])
def test_batch_norms(path):
    model = _meta_model(path)
    backbone = model.backbone
    norms = {n: m for n, m in model.named_modules()
             if isinstance(m, _BatchNorm)}
    if path not in DENSE_CONFIGS:  # the demos train on one CPU
        assert not any(isinstance(m, SyncBatchNorm) for m in norms.values())
        return
    frozen = {f'backbone.{n}' for n, m in backbone.named_modules()
              if isinstance(m, _BatchNorm)} if backbone.norm_eval else set()
    for name, module in norms.items():
        if name in frozen:  # ImageNet statistics kept: mmdet's practice
            assert type(module) is torch.nn.BatchNorm2d, name
        else:  # statistics trained at 2 images per GPU: synchronised
            assert isinstance(module, SyncBatchNorm), name
    single_map = type(backbone).__name__ == 'PatchConvNet' and \
        not hasattr(model, 'decode_head')
    if 'gn-all' in path:  # mmdet's from-scratch recipe: GroupNorm only
        assert not norms
    elif single_map:  # LayerNorm in backbone and ViTDet pyramid, no head norm
        assert not norms
    else:
        assert norms, 'nothing was checked'
    if hasattr(model, 'decode_head'):  # UperNet heads
        assert isinstance(model.decode_head.bottleneck.bn, SyncBatchNorm)
    elif 'scratch' not in path and type(backbone).__name__ != 'PatchConvNet':
        # LV-ViT stem / AlterNet: ImageNet BN keeps its statistics in mmdet
        assert backbone.norm_eval


# A UperNet config with SyncBN in backbone (LV-ViT stem), neck and heads,
# and a Mask R-CNN config with SyncBN in its pyramid neck.
RUNNER_CASES = [
    'configs/supervit/supervit-lvvit-s_upernet_8xb2-160k_ade20k-512x512.py',
    'configs/supervit/mask-rcnn_supervit-deit-s_fpn_1x_coco.py',
]


@pytest.mark.parametrize('path', RUNNER_CASES)
def test_single_process_runner_trains_syncbn_configs(path, tmp_path):
    """mmengine's Runner reverts SyncBN to BN when not distributed."""
    cfg = load_config(osp.join(REPO, path))
    strip_pretrained(cfg.model)
    small_input(cfg)
    cfg.model.backbone = reduced_backbone(cfg.model.backbone)
    with torch.device('meta'):
        init_default_scope(cfg.default_scope)
        assert any(isinstance(m, SyncBatchNorm)
                   for m in MODELS.build(cfg.model).modules())
    runner = Runner(
        model=cfg.model,
        work_dir=str(tmp_path),
        default_scope=cfg.default_scope,
        launcher='none')
    assert not runner.distributed
    model = runner.model
    assert not any(isinstance(m, SyncBatchNorm) for m in model.modules())
    assert any(isinstance(m, _BatchNorm) for m in model.modules())
    optim_wrapper = runner.build_optim_wrapper(cfg.optim_wrapper)
    data = seg_data((64, 96), 150) if cfg.default_scope == 'mmseg' \
        else det_data()
    model.train()
    norm = next(m for m in model.modules() if isinstance(m, _BatchNorm)
                and m.training)
    before = norm.running_mean.clone()
    losses = model.train_step(data, optim_wrapper)
    assert torch.isfinite(total_loss(losses))
    assert not torch.equal(norm.running_mean, before), \
        'the BN statistics did not train'


def test_cpu_runs_keep_syncbn(monkeypatch):
    """``setup_distributed`` leaves SyncBN configs as they are, in single
    and in distributed CPU runs (gloo); in the latter the CPU wrapper that
    ``setup_distributed`` selects swaps each ``SyncBatchNorm`` the config
    builds for ``CPUSyncBatchNorm`` (the sync itself:
    tests/test_engine/test_cpu_distributed.py)."""
    cfg = load_config(osp.join(REPO, RUNNER_CASES[0]))
    cfg.sync_bn = 'torch'  # mmengine's option: every BN becomes SyncBN
    before = cfg.model.to_dict()
    monkeypatch.setattr(runner_utils, '_cpu_only', lambda: True)
    started = []
    monkeypatch.setattr(runner_utils, 'init_cpu_process_group',
                        lambda launcher, dist_cfg: started.append(launcher))
    for launcher in ('none', 'pytorch'):
        runner_utils.setup_distributed(cfg, launcher)
        assert cfg.model.to_dict() == before, launcher
        assert cfg.sync_bn == 'torch'
    assert started == ['pytorch']
    assert cfg.model_wrapper_cfg.type == runner_utils.CPU_DDP
    init_default_scope('mmseg')
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    synced = {n for n, m in model.named_modules()
              if isinstance(m, SyncBatchNorm)}
    assert synced, 'nothing was checked'
    convert_cpu_sync_batchnorm(model)
    assert {n for n, m in model.named_modules()
            if isinstance(m, CPUSyncBatchNorm)} == synced
    assert not any(isinstance(m, SyncBatchNorm) for m in model.modules())
