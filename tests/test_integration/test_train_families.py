"""A real short training run for every backbone family, with UperNet (ADE20K
layout) and Mask R-CNN (COCO layout), on generated data, that must learn.

Each run goes through mmengine's Runner with mmseg's/mmdet's datasets, losses
and optimizer machinery (our layer-decay constructor) and is evaluated with
IoUMetric / CocoMetric twice: before the first iteration (after weight
initialisation, same seed, same data) and after training. The trained model
must be clearly better than the untrained one. Small backbones, 128 px
images, 8 training and 4 validation images.

Measured by running these configurations on the 2-core development machine
(torch 2.14.1 CPU, OMP_NUM_THREADS=1, the same data) with randomness seeds
0 (the one the test uses), 1 and 2; untrained -> trained:

UperNet, 80 iterations at lr 3e-3 (mIoU; total loss, mean of the last 5
iterations / mean of the first 5)::

    supervit      17.1 -> 27.9 | 10.7 -> 47.9 |  2.1 -> 32.7   loss x0.19-0.25
    patchconvnet   4.5 -> 31.2 |  9.4 -> 27.0 |  8.2 -> 36.5
    alternet       1.1 -> 22.8 |  6.6 -> 27.5 |  0.8 -> 24.6
    lr = 0 (seed 0): 17.1 -> 12.3, 4.5 -> 6.3, 1.1 -> 4.3; loss x0.93

Mask R-CNN, 40 iterations at lr 2e-3 (bbox / segm mAP@0.5)::

    supervit      0 -> .223/.198 | 0 -> .144/.168 | 0 -> .026/.026
    patchconvnet  0 -> .461/.439 | 0 -> .028/.028 | 0 -> .251/.249
    alternet      0 -> .123/.131 | .003/0 -> .080/.062 | .008/.008 -> .038/.064
    lr = 0 (seed 0): 0 -> 0 for every family

At this size the detection AP swings with the seed (.026 to .461), and 60
iterations did not make it steadier (.013 to .593); the run is also
sensitive to the number of intra-op threads: with 2 threads instead of 1
the PatchConvNet Mask R-CNN reached bbox .126 but segm 0.0 (same seed), so
the tests run single-threaded. The detectors are judged by two losses that fall steadily, as mean of the last 5 iterations /
mean of the first 5: the RPN objectness loss (0.65-0.67 -> 0.047-0.098,
ratio 0.070-0.148) and the mask loss (0.89-1.29 -> 0.38-0.50, ratio
0.318-0.493); with lr = 0 both stay put (ratio ~1.0). The box AP@0.5 must still rise above the untrained model's,
by a margin well below the smallest measured gain; the mask AP@0.5 is
recorded but not asserted (the mask loss is), since it alone fell to 0 in
the 2-thread run above.

The earlier schedule (20 iterations at lr 1e-3, PatchConvNet with the
official layer scale 1e-6, 2 validation images) was not enough: the
PatchConvNet and AlterNet UperNets went from 1.1 and 1.8 mIoU to predicting
the background everywhere (16.2), SuperViT's gained 4.4 mIoU (23.1 -> 27.5),
and only the SuperViT Mask R-CNN detected anything (bbox mAP@0.5 0.025).
"""
import copy
import math
import os.path as osp

import pytest
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
# Iterations and constant AdamW lr per task.
SCHEDULE = {'seg': dict(iters=80, lr=3e-3), 'det': dict(iters=40, lr=2e-3)}
# Thresholds, well inside the measured values (module docstring).
SEG_MIOU_GAIN = 5.0  # mIoU points over the untrained model (measured >= 10.7)
SEG_LOSS_RATIO = 0.5  # last 5 / first 5 total loss (measured <= 0.25)
DET_AP50_GAIN = 0.01  # bbox mAP@0.5 (measured gains >= 0.026)
# last 5 / first 5 per loss (measured <= 0.148 and <= 0.493)
DET_LOSS_RATIOS = {'loss_rpn_cls': 0.3, 'loss_mask': 0.7}

# Small members of each family. Column backbones feed ColumnPyramidNeck with
# 64 channels; AlterNet is hierarchical (64/128/256/512 at strides 4..32).
COLUMN = {
    'supervit': dict(type='mmsupervit.SuperViT',
                     arch=dict(embed_dims=64, depth=4, num_heads=2),
                     out_indices=(0, 1, 2, 3), pos_embed_size=128),
    # From scratch, as in the demo configs: a layer scale of 0.1 instead of
    # the official 1e-6 lets the blocks contribute from the start (with
    # 1e-6 the UperNet still predicted only the background after 80
    # iterations).
    'patchconvnet': dict(type='mmsupervit.PatchConvNet',
                         arch=dict(embed_dims=64, depth=4,
                                   layer_scale_init_value=0.1),
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
    generate_demo_data(root, num_train=8, num_val=4, seed=1)
    return root


class _Recorder(Hook):
    """Runs the validation loop on the untrained model (after weight
    initialisation, before the first iteration), and records every
    validation result (that one, then the one the training loop runs after
    the last iteration) and the losses of every iteration."""

    def __init__(self):
        self.metrics = []
        self.losses = []

    def before_train(self, runner):
        runner.val_loop.run()

    def after_val_epoch(self, runner, metrics=None):
        self.metrics.append(dict(metrics))

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses.append({k: float(v) for k, v in outputs.items()
                            if k.startswith('loss')})


def _ratio(losses, key):
    """Mean ``key`` loss of the last 5 iterations / of the first 5."""
    return (sum(x[key] for x in losses[-5:]) /
            sum(x[key] for x in losses[:5]))


def _cfg(path, data_root, task, family, work_dir):
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(demo_cfg_options(data_root, task))
    cfg.work_dir = work_dir
    iters = SCHEDULE[task]['iters']
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    cfg.train_dataloader.batch_size = 2
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                        interval=iters, by_epoch=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10)
    cfg.default_hooks.pop('visualization', None)
    cfg.param_scheduler = []
    cfg.randomness = dict(seed=0)
    # the generic recipe: AdamW with our layer-decay constructor
    cfg.optim_wrapper = dict(
        type='OptimWrapper',
        constructor='mmsupervit.LayerDecayOptimWrapperConstructor',
        optimizer=dict(type='AdamW', lr=SCHEDULE[task]['lr'],
                       weight_decay=0.05),
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


def train_and_evaluate(cfg, family):
    """Train ``cfg``; returns (untrained metrics, trained metrics, losses)."""
    recorder = _Recorder()
    runner = Runner.from_cfg(cfg)
    runner.register_hook(recorder)
    assert type(runner.model.backbone).__name__.lower() == family
    runner.train()
    iters = cfg.train_cfg.max_iters
    assert runner.iter == iters
    assert osp.isfile(osp.join(cfg.work_dir, f'iter_{iters}.pth'))
    # before training, and after the last iteration
    assert len(recorder.metrics) == 2, recorder.metrics
    return recorder.metrics[0], recorder.metrics[1], recorder.losses


@pytest.mark.slow
@pytest.mark.parametrize('family', ['supervit', 'patchconvnet', 'alternet'])
@pytest.mark.parametrize('task', ['seg', 'det'])
def test_training_learns(data_root, tmp_path, family, task, single_thread):
    path = SEG_CFG if task == 'seg' else DET_CFG
    cfg = _cfg(path, data_root, task, family, str(tmp_path / 'work'))
    before, after, losses = train_and_evaluate(cfg, family)
    assert len(losses) == SCHEDULE[task]['iters']
    assert all(math.isfinite(v) for x in losses for v in x.values())
    if task == 'seg':
        assert after['mIoU'] >= before['mIoU'] + SEG_MIOU_GAIN, (before,
                                                                 after)
        assert _ratio(losses, 'loss') <= SEG_LOSS_RATIO
    else:
        for key, limit in DET_LOSS_RATIOS.items():
            assert _ratio(losses, key) <= limit, key
        key = 'coco/bbox_mAP_50'
        assert after[key] >= before[key] + DET_AP50_GAIN, (key, before, after)
