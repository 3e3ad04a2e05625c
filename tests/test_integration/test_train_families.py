"""A real short training run for every backbone family, with UperNet (ADE20K
layout) and Mask R-CNN (COCO layout), on generated data.

Each run trains 20 iterations through mmengine's Runner with mmseg's/mmdet's
datasets, losses and optimizer machinery (our layer-decay constructor), then
evaluates with IoUMetric / CocoMetric. Small backbones, 128 px images.
"""
import copy
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

import mmsupervit  # noqa: F401
from mmsupervit.datasets.demo_data import demo_cfg_options, generate_demo_data

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SEG_CFG = osp.join(REPO, 'configs', 'demo',
                   'supervit-tiny_upernet_1xb4-300i_demo-128x128.py')
DET_CFG = osp.join(REPO, 'configs', 'demo',
                   'mask-rcnn_patchconvnet-tiny_fpn_300i_demo.py')
ITERS = 20

# Small members of each family. Column backbones feed ColumnPyramidNeck with
# 64 channels; AlterNet is hierarchical (64/128/256/512 at strides 4..32).
COLUMN = {
    'supervit': dict(type='mmsupervit.SuperViT',
                     arch=dict(embed_dims=64, depth=4, num_heads=2),
                     out_indices=(0, 1, 2, 3), pos_embed_size=128),
    'patchconvnet': dict(type='mmsupervit.PatchConvNet',
                         arch=dict(embed_dims=64, depth=4),
                         out_indices=(0, 1, 2, 3)),
}
ALTERNET = dict(type='mmsupervit.AlterNet',
                arch=dict(block='basic', num_blocks=(1, 2, 2, 2),
                          num_msa=(0, 1, 1, 1), heads=(1, 1, 2, 2),
                          head_dim=32))
ALTERNET_CHANNELS = [64, 128, 256, 512]


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('families_data'))
    generate_demo_data(root, num_train=8, num_val=2, seed=1)
    return root


class _LossRecorder(Hook):

    def __init__(self):
        self.losses = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses.append(float(outputs['loss']))


def _cfg(path, data_root, task, family, work_dir):
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(demo_cfg_options(data_root, task))
    cfg.work_dir = work_dir
    cfg.train_cfg.max_iters = ITERS
    cfg.train_cfg.val_interval = ITERS
    cfg.train_dataloader.batch_size = 2
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                        interval=ITERS, by_epoch=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=5)
    cfg.default_hooks.pop('visualization', None)
    cfg.param_scheduler = []
    # the generic recipe: AdamW with our layer-decay constructor
    cfg.optim_wrapper = dict(
        type='OptimWrapper',
        constructor='mmsupervit.LayerDecayOptimWrapperConstructor',
        optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
        paramwise_cfg=dict(layer_decay_rate=0.9))
    model = cfg.model
    if family == 'alternet':
        model.backbone = copy.deepcopy(ALTERNET)
        if task == 'seg':
            model.pop('neck')
            model.decode_head.in_channels = ALTERNET_CHANNELS
            model.auxiliary_head.in_channels = ALTERNET_CHANNELS[2]
        else:
            fpn = [n for n in model.neck if n['type'] == 'FPN'][0]
            fpn['in_channels'] = ALTERNET_CHANNELS
            model.neck = fpn
    else:
        model.backbone = copy.deepcopy(COLUMN[family])
        necks = model.neck if isinstance(model.neck, list) else [model.neck]
        necks[0]['in_channels'] = 64
        if task == 'det':
            necks[1]['in_channels'] = [64] * 4
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize('family', ['supervit', 'patchconvnet', 'alternet'])
@pytest.mark.parametrize('task', ['seg', 'det'])
def test_twenty_iterations_train_and_evaluate(data_root, tmp_path, family,
                                              task):
    torch.manual_seed(0)
    path = SEG_CFG if task == 'seg' else DET_CFG
    cfg = _cfg(path, data_root, task, family, str(tmp_path / 'work'))
    recorder = _LossRecorder()
    runner = Runner.from_cfg(cfg)
    runner.register_hook(recorder)
    assert type(runner.model.backbone).__name__.lower() == family
    runner.train()
    assert runner.iter == ITERS
    assert len(recorder.losses) == ITERS
    assert all(math.isfinite(x) for x in recorder.losses)
    ckpt = osp.join(cfg.work_dir, f'iter_{ITERS}.pth')
    assert osp.isfile(ckpt)
    metrics = runner.val_loop.run()
    if task == 'seg':
        assert 0.0 <= metrics['mIoU'] <= 100.0
    else:
        assert 'coco/bbox_mAP' in metrics and 'coco/segm_mAP' in metrics
        assert metrics['coco/segm_mAP'] >= 0
