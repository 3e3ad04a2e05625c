"""Foundation: a model in the mmsupervit scope inside mmseg and mmdet configs,
and an interrupted training that resumes (needs the compat fix)."""
import copy
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import BaseModel, BaseModule
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import mmsupervit  # noqa: F401
from mmsupervit.registry import MODELS


@MODELS.register_module(name='_ToyPyramid', force=True)
class ToyPyramid(BaseModule):
    """Four conv stages at strides 4/8/16/32: the smallest real backbone."""

    def __init__(self, widths=(8, 16, 16, 16), init_cfg=None):
        super().__init__(init_cfg)
        chans = (3, ) + tuple(widths)
        self.stages = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(chans[i], chans[i + 1], 3, 4 if i == 0 else 2, 1),
                nn.ReLU()) for i in range(4))
        self.out_channels = tuple(widths)
        self.out_strides = (4, 8, 16, 32)

    def forward(self, x):
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return tuple(outs)


SEG_CFG = """
_base_ = ['mmseg::_base_/models/upernet_r50.py']
custom_imports = dict(imports=['mmsupervit'], allow_failed_imports=False)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    pretrained=None,
    backbone=dict(_delete_=True, type='mmsupervit._ToyPyramid'),
    decode_head=dict(in_channels=[8, 16, 16, 16], channels=16,
                     num_classes=5, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=16, channels=8, num_classes=5,
                        norm_cfg=norm_cfg))
"""

DET_CFG = """
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']
custom_imports = dict(imports=['mmsupervit'], allow_failed_imports=False)
model = dict(
    backbone=dict(_delete_=True, type='mmsupervit._ToyPyramid'),
    neck=dict(in_channels=[8, 16, 16, 16], out_channels=16),
    rpn_head=dict(in_channels=16, feat_channels=16),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=16),
        bbox_head=dict(in_channels=16, fc_out_channels=32, num_classes=3),
        mask_roi_extractor=dict(out_channels=16),
        mask_head=dict(in_channels=16, conv_out_channels=16,
                       num_classes=3)))
"""


def _cfg(tmp_path, text, name):
    path = osp.join(tmp_path, name)
    with open(path, 'w') as f:
        f.write(text)
    return Config.fromfile(path)


def test_upernet_from_mmseg_config_forward_backward(tmp_path):
    pytest.importorskip('mmseg', reason='mmseg is not installed: '
                        "pip install -e '.[seg]'")
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS as SEG_MODELS
    from mmseg.structures import SegDataSample
    cfg = _cfg(tmp_path, SEG_CFG, 'upernet_toy.py')
    init_default_scope('mmseg')
    model = SEG_MODELS.build(cfg.model)
    assert isinstance(model.backbone, ToyPyramid)
    samples = []
    for _ in range(2):
        s = SegDataSample(metainfo=dict(img_shape=(64, 64),
                                        pad_shape=(64, 64),
                                        ori_shape=(64, 64)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 5, (1, 64, 64)))
        samples.append(s)
    data = model.data_preprocessor(
        dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)
                     for _ in range(2)], data_samples=samples), training=True)
    losses = model(**data, mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert torch.isfinite(total)
    assert model.backbone.stages[0][0].weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        preds = model(**data, mode='predict')
    assert preds[0].pred_sem_seg.data.shape == (1, 64, 64)


def test_mask_rcnn_from_mmdet_config_forward_backward(tmp_path):
    pytest.importorskip('mmdet', reason='mmdet is not installed: '
                        "pip install -e '.[det]'")
    from mmdet.registry import MODELS as DET_MODELS
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    cfg = _cfg(tmp_path, DET_CFG, 'mask_rcnn_toy.py')
    init_default_scope('mmdet')
    model = DET_MODELS.build(cfg.model)
    assert isinstance(model.backbone, ToyPyramid)
    size = 96
    sample = DetDataSample(metainfo=dict(img_shape=(size, size),
                                         pad_shape=(size, size),
                                         ori_shape=(size, size),
                                         scale_factor=(1.0, 1.0)))
    masks = torch.zeros(2, size, size, dtype=torch.uint8)
    masks[0, 10:40, 10:50] = 1
    masks[1, 50:90, 40:80] = 1
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[10., 10., 50., 40.], [40., 50., 80., 90.]]),
        labels=torch.tensor([0, 2]),
        masks=BitmapMasks(masks.numpy(), size, size))
    data = model.data_preprocessor(
        dict(inputs=[torch.randint(0, 255, (3, size, size),
                                   dtype=torch.uint8)],
             data_samples=[sample]), training=True)
    losses = model(**data, mode='loss')
    total = sum(v if torch.is_tensor(v) else sum(v)
                for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert torch.isfinite(total)
    assert 'loss_mask' in losses
    assert model.backbone.stages[0][0].weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        preds = model(**data, mode='predict')
    assert hasattr(preds[0].pred_instances, 'masks')


class _Regressor(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, inputs, targets=None, mode='loss'):
        inputs = torch.stack(inputs) if isinstance(inputs, list) else inputs
        targets = torch.stack(targets) if isinstance(targets,
                                                     list) else targets
        return dict(loss=(self.linear(inputs) - targets).pow(2).mean())


class _Record(Hook):
    """Records where training (re)starts and the optimizer state there."""

    def __init__(self):
        self.start_iter = None
        self.optim_state = None
        self.iters_run = []

    def before_train(self, runner):
        self.start_iter = runner.iter
        self.optim_state = copy.deepcopy(
            runner.optim_wrapper.optimizer.state_dict())

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        # the loop increments runner.iter after this hook: count 1-based
        self.iters_run.append(runner.iter + 1)


def _runner(work_dir, max_iters, hook, resume):
    g = torch.Generator().manual_seed(0)
    data = [dict(inputs=torch.randn(4, generator=g),
                 targets=torch.randn(1, generator=g)) for _ in range(16)]
    return Runner(
        model=_Regressor(),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=data, batch_size=4, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        param_scheduler=dict(type='LinearLR', start_factor=0.5, by_epoch=False,
                             begin=0, end=4),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[hook],
        resume=resume,
        randomness=dict(seed=0),
        default_scope='mmsupervit')


def test_interrupted_training_resumes_with_optimizer_state(tmp_path):
    work_dir = str(tmp_path / 'work')
    first = _Record()
    runner = _runner(work_dir, 2, first, resume=False)
    runner.train()
    assert first.iters_run == [1, 2]
    saved = torch.load(osp.join(work_dir, 'iter_2.pth'), map_location='cpu')
    assert saved['meta']['iter'] == 2
    del runner

    # A new process would start from here: same work_dir, resume=True.
    second = _Record()
    runner = _runner(work_dir, 4, second, resume=True)
    runner.train()
    assert second.start_iter == 2
    assert second.iters_run == [3, 4]
    restored = second.optim_state
    expected = saved['optimizer']
    # AdamW state for both parameters of the linear layer (weight, bias)
    assert len(expected['state']) == 2
    assert restored['param_groups'][0]['lr'] == pytest.approx(
        expected['param_groups'][0]['lr'])
    for pid, state in expected['state'].items():
        assert int(restored['state'][pid]['step']) == 2
        torch.testing.assert_close(restored['state'][pid]['exp_avg'],
                                   state['exp_avg'])
        torch.testing.assert_close(restored['state'][pid]['exp_avg_sq'],
                                   state['exp_avg_sq'])
    assert osp.exists(osp.join(work_dir, 'iter_4.pth'))
