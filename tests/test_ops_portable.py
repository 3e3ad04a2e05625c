"""mmsupervit.ops: mmcv's detection kernels routed to torchvision's where a
device has no mmcv kernel.

The torchvision path is forced on CPU (``MMSUPERVIT_OPS=torchvision``) and
compared with mmcv's CPU kernels, op by op and through whole Mask R-CNN
steps. Routing by device is checked on ``meta`` tensors (mmcv has no meta
kernels: a real probe) and on CPU with mmcv's kernels replaced by ones that
raise mmcv's missing-kernel error (a simulated CUDA-less build). No GPU is
used: that the torchvision kernels run on CUDA is torchvision's own promise.
"""
import copy
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torchvision
from mmcv.ops import RoIAlign, batched_nms, nms, roi_align
from torchvision.ops import box_iou

import mmsupervit  # noqa: F401  (installs the routing)
from mmsupervit.ops import ROUTED_OPS, portable

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join(REPO, 'configs', 'demo')
PATHS = ('mmcv', 'torchvision')


@pytest.fixture(autouse=True)
def _fresh_probes():
    """Each test probes the kernels itself (tests may fake mmcv's)."""
    portable.mmcv_has_kernel.cache_clear()
    portable.torchvision_supports.cache_clear()
    yield
    portable.mmcv_has_kernel.cache_clear()
    portable.torchvision_supports.cache_clear()


class KernelSpy:
    """Counts kernel calls per (library, op, device type)."""

    def __init__(self, monkeypatch):
        self.calls = {}
        import mmcv._ext as ext
        for op in ROUTED_OPS:
            monkeypatch.setattr(ext, op, self._wrap(('mmcv', op),
                                                    getattr(ext, op)))
        for name in ('nms', 'roi_align'):
            monkeypatch.setattr(
                torchvision.ops, name,
                self._wrap(('torchvision', name),
                           getattr(torchvision.ops, name)))

    def _wrap(self, key, fn):

        def spy(first, *args, **kwargs):
            full = key + (first.device.type, )
            self.calls[full] = self.calls.get(full, 0) + 1
            return fn(first, *args, **kwargs)

        return spy

    def libraries(self):
        return {key[0] for key in self.calls}


@pytest.fixture
def spy(monkeypatch):
    return KernelSpy(monkeypatch)


def _on_both_paths(monkeypatch, fn):
    """``{path: fn()}`` with each path forced."""
    out = {}
    for path in PATHS:
        monkeypatch.setenv('MMSUPERVIT_OPS', path)
        out[path] = fn()
    return out


def _boxes(n, num_classes, seed, ties=False):
    """Boxes on a 100x100 image: some outside it, some of zero area."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 140 - 20
    wh = torch.rand(n, 2, generator=g) * 40
    wh[torch.rand(n, generator=g) < 0.1, 0] = 0  # zero width
    wh[torch.rand(n, generator=g) < 0.1, 1] = 0  # zero height
    boxes = torch.cat([xy, xy + wh], dim=1)
    if ties:  # one decimal: many exactly equal scores
        scores = (torch.rand(n, generator=g) * 10).round() / 10
    else:  # a permutation: no two scores equal
        scores = (torch.randperm(n, generator=g).float() + 1) / (n + 1)
    labels = torch.randint(0, num_classes, (n, ), generator=g)
    return boxes, scores, labels


# --------------------------------------------------------------------------
# the switch
# --------------------------------------------------------------------------
def test_invalid_mode_names_the_valid_ones(monkeypatch):
    boxes, scores, _ = _boxes(5, 1, 0)
    monkeypatch.setenv('MMSUPERVIT_OPS', 'cuda')
    with pytest.raises(ValueError, match="'cuda'.*auto, mmcv, torchvision"):
        nms(boxes, scores, 0.5)


def test_env_is_read_at_every_call(monkeypatch, spy):
    boxes, scores, _ = _boxes(20, 1, 0)
    for path in ('mmcv', 'torchvision', 'mmcv'):
        monkeypatch.setenv('MMSUPERVIT_OPS', path)
        nms(boxes, scores, 0.5)
    assert spy.calls == {('mmcv', 'nms', 'cpu'): 2,
                         ('torchvision', 'nms', 'cpu'): 1}


def test_path_is_logged_once_per_op_and_device(monkeypatch):
    messages = []
    monkeypatch.setattr(portable, 'print_log',
                        lambda msg, logger=None: messages.append(msg))
    monkeypatch.setattr(portable, '_LOGGED', set())
    monkeypatch.setenv('MMSUPERVIT_OPS', 'auto')
    boxes, scores, _ = _boxes(20, 1, 0)
    for _ in range(3):
        nms(boxes, scores, 0.5)
    assert messages == ['mmsupervit.ops: nms on cpu runs the mmcv kernel '
                        '(mmcv has a kernel for this device)']


# --------------------------------------------------------------------------
# NMS: torchvision's kernel against mmcv's
# --------------------------------------------------------------------------
@pytest.mark.parametrize('n', [0, 1, 400])
@pytest.mark.parametrize('kwargs', [
    dict(iou_threshold=0.5),
    dict(iou_threshold=0.3, offset=1),
    dict(iou_threshold=0.7, score_threshold=0.4, max_num=25),
])
def test_nms_matches_mmcv(monkeypatch, spy, n, kwargs):
    boxes, scores, _ = _boxes(n, 1, seed=n)
    out = _on_both_paths(monkeypatch, lambda: nms(boxes, scores, **kwargs))
    assert spy.libraries() == set(PATHS)
    (dets_m, keep_m), (dets_t, keep_t) = out['mmcv'], out['torchvision']
    assert torch.equal(keep_m, keep_t)
    assert torch.equal(dets_m, dets_t)
    if n == 400:  # the case is not trivial: something is suppressed
        assert 0 < len(keep_m) < n


@pytest.mark.parametrize('n', [0, 600])
@pytest.mark.parametrize('nms_cfg', [
    dict(type='nms', iou_threshold=0.5),
    dict(type='nms', iou_threshold=0.6, class_agnostic=True),
    # more boxes than split_thr: one NMS per class, then mmcv's re-sort
    dict(type='nms', iou_threshold=0.5, split_thr=100),
    dict(type='nms', iou_threshold=0.5, split_thr=100, max_num=30),
])
def test_batched_nms_matches_mmcv(monkeypatch, spy, n, nms_cfg):
    boxes, scores, labels = _boxes(n, 80, seed=n + 1)
    if n == 0 and not nms_cfg.get('class_agnostic'):
        # mmcv's own Python rejects this before any kernel (``boxes.max()``
        # of nothing); mmdet returns early on empty inputs. Same on both.
        for path in PATHS:
            monkeypatch.setenv('MMSUPERVIT_OPS', path)
            with pytest.raises(RuntimeError, match='numel'):
                batched_nms(boxes, scores, labels, copy.deepcopy(nms_cfg))
        return
    out = _on_both_paths(
        monkeypatch,
        lambda: batched_nms(boxes, scores, labels, copy.deepcopy(nms_cfg)))
    assert spy.libraries() == set(PATHS)
    (dets_m, keep_m), (dets_t, keep_t) = out['mmcv'], out['torchvision']
    assert torch.equal(keep_m, keep_t)
    assert torch.equal(dets_m, dets_t)
    assert dets_t.shape == (len(keep_t), 5)
    assert torch.equal(dets_t[:, 4], scores[keep_t])
    assert bool((dets_t[1:, 4] <= dets_t[:-1, 4]).all()), 'not sorted'
    if 'max_num' in nms_cfg and n:
        assert len(keep_t) == nms_cfg['max_num']


def _assert_valid_nms(boxes, scores, labels, keep, iou_threshold):
    """Greedy NMS validity, whatever order ties were broken in."""
    kept = torch.zeros(len(boxes), dtype=torch.bool)
    kept[keep] = True
    same = labels[:, None] == labels[None, :]
    iou = box_iou(boxes, boxes)
    overlap = (iou > iou_threshold) & same
    overlap.fill_diagonal_(False)
    assert not overlap[kept][:, kept].any(), 'two kept boxes overlap'
    covers = overlap[~kept][:, kept] & \
        (scores[kept][None, :] >= scores[~kept][:, None])
    assert covers.any(dim=1).all(), \
        'a dropped box overlaps no kept box of its class with >= score'


def test_batched_nms_with_score_ties_is_valid(monkeypatch):
    boxes, scores, labels = _boxes(500, 3, seed=7, ties=True)
    assert len(scores.unique()) <= 11
    out = _on_both_paths(
        monkeypatch,
        lambda: batched_nms(boxes, scores, labels,
                            dict(type='nms', iou_threshold=0.3)))
    for path in PATHS:
        keep = out[path][1]
        assert 0 < len(keep) < len(boxes)
        _assert_valid_nms(boxes, scores, labels, keep, 0.3)
    # the check itself rejects an invalid result
    keep = out['torchvision'][1]
    dropped = torch.ones(len(boxes), dtype=torch.bool)
    dropped[keep] = False
    with pytest.raises(AssertionError, match='two kept boxes overlap'):
        _assert_valid_nms(boxes, scores, labels,
                          torch.cat([keep, dropped.nonzero()[:1, 0]]), 0.3)
    with pytest.raises(AssertionError, match='a dropped box overlaps'):
        _assert_valid_nms(boxes, scores, labels, keep[1:], 0.3)


# --------------------------------------------------------------------------
# RoIAlign: torchvision's kernel against mmcv's
# --------------------------------------------------------------------------
def _rois(n, seed):
    """RoIs on a 2-image batch of 40x48 inputs, at spatial scale 0.5."""
    boxes, _, _ = _boxes(n, 1, seed)
    batch = torch.randint(0, 2, (n, 1),
                          generator=torch.Generator().manual_seed(seed))
    return torch.cat([batch.float(), boxes * 0.5], dim=1)


def _roi_align_run(feats, rois, grad_out, use_module, **kw):
    feats = feats.detach().clone().requires_grad_()
    if use_module:
        out = RoIAlign((7, 7), 0.5, **kw)(feats, rois)
    else:
        out = roi_align(feats, rois, (7, 7), 0.5, kw['sampling_ratio'], 'avg',
                        kw['aligned'])
    out.backward(grad_out)
    return out.detach(), feats.grad


@pytest.mark.parametrize('aligned', [True, False])
@pytest.mark.parametrize('sampling_ratio', [0, 2])
@pytest.mark.parametrize('n', [0, 60])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16])
def test_roi_align_matches_mmcv(monkeypatch, spy, aligned, sampling_ratio, n,
                                dtype):
    torch.manual_seed(n)
    feats = torch.randn(2, 5, 20, 24).to(dtype)
    rois = _rois(n, seed=n).to(dtype)
    grad_out = torch.randn(n, 5, 7, 7).to(dtype)
    kw = dict(sampling_ratio=sampling_ratio, aligned=aligned)
    for use_module in (True, False):
        out = _on_both_paths(
            monkeypatch,
            lambda: _roi_align_run(feats, rois, grad_out, use_module, **kw))
        assert spy.libraries() == set(PATHS)
        (y_m, g_m), (y_t, g_t) = out['mmcv'], out['torchvision']
        assert y_t.shape == (n, 5, 7, 7) and y_t.dtype == dtype
        assert g_t.shape == feats.shape and g_t.dtype == dtype
        # fp16: both accumulate in half on CPU, in different orders
        tol = 1e-5 if dtype == torch.float32 else 2e-2
        torch.testing.assert_close(y_t, y_m, atol=tol, rtol=0)
        torch.testing.assert_close(g_t, g_m, atol=tol, rtol=0)
        if n:
            assert y_m.abs().sum() > 0 and g_m.abs().sum() > 0


def test_mmcv_roi_align_gets_contiguous_input(monkeypatch):
    """mmcv#2203: mmcv's kernel reads a channels-last map as if it were
    contiguous. Through the router both paths see the real values."""
    torch.manual_seed(0)
    feats = torch.randn(2, 5, 20, 24)
    last = feats.to(memory_format=torch.channels_last)
    assert not last.is_contiguous()
    rois = _rois(30, 2)
    grad_out = torch.randn(30, 5, 7, 7)
    kw = dict(sampling_ratio=0, aligned=True)
    # the upstream problem, calling mmcv's extension directly
    import mmcv._ext as ext
    raw = torch.zeros(30, 5, 7, 7)
    ext.roi_align_forward(last, rois, raw, torch.zeros(0), torch.zeros(0),
                          aligned_height=7, aligned_width=7, spatial_scale=0.5,
                          sampling_ratio=0, pool_mode=1, aligned=True)
    monkeypatch.setenv('MMSUPERVIT_OPS', 'mmcv')
    want = _roi_align_run(feats, rois, grad_out, True, **kw)
    assert (raw - want[0]).abs().max() > 0.1, 'mmcv#2203 fixed upstream?'
    for path in PATHS:
        monkeypatch.setenv('MMSUPERVIT_OPS', path)
        got = _roi_align_run(last, rois, grad_out, True, **kw)
        torch.testing.assert_close(got[0], want[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(got[1], want[1], atol=1e-5, rtol=0)


def test_roi_align_max_pooling_has_no_torchvision_kernel(monkeypatch):
    monkeypatch.setenv('MMSUPERVIT_OPS', 'torchvision')
    with pytest.raises(NotImplementedError, match="pool_mode='max'"):
        roi_align(torch.randn(1, 2, 8, 8), torch.tensor([[0., 1, 1, 5, 5]]),
                  (2, 2), 1.0, 0, 'max', True)


# --------------------------------------------------------------------------
# routing by device
# --------------------------------------------------------------------------
def test_auto_uses_mmcv_where_it_has_a_kernel(monkeypatch, spy):
    monkeypatch.setenv('MMSUPERVIT_OPS', 'auto')
    boxes, scores, labels = _boxes(50, 3, 0)
    batched_nms(boxes, scores, labels, dict(iou_threshold=0.5))
    feats = torch.randn(2, 3, 10, 10, requires_grad=True)
    roi_align(feats, _rois(4, 0), (7, 7), 0.5, 0, 'avg', True).sum() \
        .backward()
    assert spy.libraries() == {'mmcv'}
    assert {op for _, op, _ in spy.calls} == set(ROUTED_OPS)


def test_auto_routes_meta_tensors_to_torchvision(monkeypatch, spy):
    """mmcv has no meta kernels (probed for real); torchvision's RoIAlign has
    meta support, its NMS cannot have it (data-dependent output size)."""
    monkeypatch.setenv('MMSUPERVIT_OPS', 'auto')
    meta = torch.device('meta')
    assert not portable.mmcv_has_kernel('roi_align_forward', meta)
    assert not portable.mmcv_has_kernel('nms', meta)
    feats = torch.randn(2, 3, 10, 10, device=meta, requires_grad=True)
    out = RoIAlign((7, 7), 0.5)(feats, _rois(4, 0).to(meta))
    assert out.device == meta and out.shape == (4, 3, 7, 7)
    out.sum().backward()
    assert feats.grad.shape == feats.shape
    boxes, scores, _ = _boxes(4, 1, 0)
    with pytest.raises(RuntimeError, match='torchvision::nms'):
        nms(boxes.to(meta), scores.to(meta), 0.5)
    # mmcv ran once per op: the probe that found no kernel
    assert {k: v for k, v in spy.calls.items() if k[0] == 'mmcv'} == {
        ('mmcv', op, 'meta'): 1 for op in ROUTED_OPS}
    assert spy.calls[('torchvision', 'nms', 'meta')] == 1
    assert spy.calls[('torchvision', 'roi_align', 'meta')] == 2  # fwd, bwd


def test_mmcv_forced_on_meta_raises_mmcvs_error(monkeypatch):
    monkeypatch.setenv('MMSUPERVIT_OPS', 'mmcv')
    boxes, scores, _ = _boxes(4, 1, 0)
    with pytest.raises(RuntimeError,
                       match='implementation for device meta not found'):
        nms(boxes.to('meta'), scores.to('meta'), 0.5)


def _without_mmcv_kernels(monkeypatch, device_type):
    """mmcv._ext as a build without kernels for ``device_type`` behaves."""
    import mmcv._ext as ext
    for op in ROUTED_OPS:
        real = getattr(ext, op)

        def missing(first, *args, _op=op, _real=real, **kwargs):
            if first.device.type == device_type:
                raise RuntimeError(f'{_op}_impl: implementation for device '
                                   f'{device_type} not found.')
            return _real(first, *args, **kwargs)

        monkeypatch.setattr(ext, op, missing)


def test_auto_falls_back_where_mmcv_lacks_the_kernel(monkeypatch):
    """The CUDA situation, simulated on CPU: the same probe and routing, with
    real values to compare."""
    monkeypatch.setenv('MMSUPERVIT_OPS', 'auto')
    boxes, scores, labels = _boxes(300, 5, 3)
    feats = torch.randn(2, 3, 20, 24)
    rois = _rois(30, 1)
    grad_out = torch.randn(30, 3, 7, 7)

    def run():
        keep = batched_nms(boxes, scores, labels,
                           dict(iou_threshold=0.5))[1]
        return keep, _roi_align_run(feats, rois, grad_out, True,
                                    sampling_ratio=0, aligned=True)

    keep_m, (y_m, g_m) = run()
    _without_mmcv_kernels(monkeypatch, 'cpu')
    portable.mmcv_has_kernel.cache_clear()
    spy = KernelSpy(monkeypatch)
    keep_t, (y_t, g_t) = run()
    cpu = torch.device('cpu')
    assert not any(portable.mmcv_has_kernel(op, cpu) for op in ROUTED_OPS)
    # mmcv was asked once per op (the probe), torchvision did the work
    assert {k: v for k, v in spy.calls.items() if k[0] == 'mmcv'} == {
        ('mmcv', op, 'cpu'): 1 for op in ROUTED_OPS}
    assert spy.calls[('torchvision', 'nms', 'cpu')] == 1
    assert torch.equal(keep_t, keep_m)
    torch.testing.assert_close(y_t, y_m, atol=1e-5, rtol=0)
    torch.testing.assert_close(g_t, g_m, atol=1e-5, rtol=0)


def test_probe_does_not_hide_other_errors(monkeypatch):
    import mmcv._ext as ext

    def broken(*args, **kwargs):
        raise RuntimeError('CUDA error: an illegal memory access')

    monkeypatch.setattr(ext, 'nms', broken)
    with pytest.raises(RuntimeError, match='illegal memory access'):
        portable.mmcv_has_kernel('nms', torch.device('cpu'))


def test_routing_survives_mmdet_imported_first():
    """mmdet binds ``batched_nms``/``RoIAlign`` before mmsupervit is imported;
    its bound names still reach the router."""
    script = '\n'.join([
        'import os, sys, torch, torchvision',
        'from mmdet.models.dense_heads import rpn_head',
        'from mmdet.models.roi_heads.roi_extractors import '
        'single_level_roi_extractor as sre',
        "ext = sys.modules['mmcv.ops.nms'].ext_module",
        "assert type(ext).__name__ == 'module', ext",
        'import mmsupervit',
        'calls = []',
        'real = torchvision.ops.nms',
        'torchvision.ops.nms = lambda *a: calls.append(1) or real(*a)',
        "os.environ['MMSUPERVIT_OPS'] = 'torchvision'",
        'b = torch.tensor([[0., 0, 10, 10], [1, 1, 11, 11]])',
        "dets, keep = rpn_head.batched_nms(b, torch.tensor([.9, .8]),",
        "    torch.tensor([0, 0]), dict(type='nms', iou_threshold=0.5))",
        'assert keep.tolist() == [0] and calls == [1], (keep, calls)',
        "layer = sre.SingleRoIExtractor(dict(type='RoIAlign', output_size=2,",
        "    sampling_ratio=0), out_channels=3, featmap_strides=[1])",
        'real_ra = torchvision.ops.roi_align',
        'torchvision.ops.roi_align = lambda *a: calls.append(2) or '
        'real_ra(*a)',
        'layer((torch.randn(1, 3, 8, 8), ), torch.tensor([[0., 1, 1, 5, 5]]))',
        'assert calls == [1, 2], calls',
        "print('routed')",
    ])
    proc = subprocess.run([sys.executable, '-c', script], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env=_subprocess_env())
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith('routed')


def _subprocess_env():
    import os
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
    env.pop('MMSUPERVIT_OPS', None)
    return env


# --------------------------------------------------------------------------
# whole train and test steps
# --------------------------------------------------------------------------
SMALL_BACKBONES = {
    'supervit': dict(type='mmsupervit.SuperViT',
                     arch=dict(embed_dims=64, depth=4, num_heads=2),
                     out_indices=(0, 1, 2, 3), pos_embed_size=128),
    'patchconvnet': dict(type='mmsupervit.PatchConvNet',
                         arch=dict(embed_dims=64, depth=4),
                         out_indices=(0, 1, 2, 3)),
    'alternet': dict(type='mmsupervit.AlterNet',
                     arch=dict(block='basic', num_blocks=(1, 2, 2, 2),
                               num_msa=(0, 1, 1, 1), heads=(1, 1, 2, 2),
                               head_dim=32)),
}


def _det_model(family):
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    cfg = Config.fromfile(
        osp.join(DEMO, 'mask-rcnn_patchconvnet-tiny_fpn_300i_demo.py'))
    cfg.model.backbone = copy.deepcopy(SMALL_BACKBONES[family])
    if family == 'alternet':  # hierarchical: FPN straight on its 4 stages
        fpn = cfg.model.neck[1]
        fpn.in_channels = [64, 128, 256, 512]
        cfg.model.neck = fpn
    init_default_scope('mmdet')
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def _det_batch(model):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    h, w = 96, 128
    gen = torch.Generator().manual_seed(0)
    samples, imgs = [], []
    for boxes in ([[10., 8., 70., 60.], [60., 40., 120., 90.]],
                  [[5., 5., 50., 40.]]):
        s = DetDataSample(metainfo=dict(img_shape=(h, w), pad_shape=(h, w),
                                        ori_shape=(h, w),
                                        scale_factor=(1., 1.)))
        masks = torch.zeros(len(boxes), h, w, dtype=torch.uint8)
        for i, (x1, y1, x2, y2) in enumerate(boxes):
            masks[i, int(y1):int(y2), int(x1):int(x2)] = 1
        s.gt_instances = InstanceData(
            bboxes=torch.tensor(boxes), labels=torch.arange(len(boxes)),
            masks=BitmapMasks(masks.numpy(), h, w))
        samples.append(s)
        imgs.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8,
                                  generator=gen))
    return model.data_preprocessor(dict(inputs=imgs, data_samples=samples),
                                   training=True)


def _train_and_test_step(model, data):
    """Losses, parameter gradients and predictions of one step each."""
    model.train()
    model.zero_grad()
    torch.manual_seed(1)  # the RoI sampler draws at random
    losses = model(**data, mode='loss')
    total = sum(v if torch.is_tensor(v) else sum(v)
                for k, v in losses.items() if 'loss' in k)
    total.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()
             if p.grad is not None}
    model.eval()
    with torch.no_grad():
        preds = model(**data, mode='predict')
    return {k: torch.stack(v).sum() if isinstance(v, list) else v.detach()
            for k, v in losses.items()}, grads, preds


@pytest.mark.parametrize('family', ['supervit', 'alternet', 'patchconvnet'])
def test_mask_rcnn_steps_equal_on_both_paths(monkeypatch, spy, family):
    model = _det_model(family)
    assert type(model.backbone).__name__.lower() == family
    data = _det_batch(model)
    state = copy.deepcopy(model.state_dict())  # BN statistics change
    out, kernels = {}, {}
    for path in PATHS:
        monkeypatch.setenv('MMSUPERVIT_OPS', path)
        model.load_state_dict(state)
        spy.calls.clear()
        out[path] = _train_and_test_step(model, data)
        kernels[path] = {(lib, op) for lib, op, _ in spy.calls}
    assert kernels == {
        'mmcv': {('mmcv', op) for op in ROUTED_OPS},
        'torchvision': {('torchvision', 'nms'), ('torchvision', 'roi_align')}
    }
    (loss_m, grad_m, pred_m) = out['mmcv']
    (loss_t, grad_t, pred_t) = out['torchvision']
    assert loss_m.keys() == loss_t.keys()
    for key in loss_m:
        torch.testing.assert_close(loss_t[key], loss_m[key], atol=1e-5,
                                   rtol=1e-5, msg=key)
    assert grad_m.keys() == grad_t.keys() and grad_m
    for name in grad_m:
        torch.testing.assert_close(grad_t[name], grad_m[name], atol=1e-5,
                                   rtol=1e-4, msg=name)
    for p_m, p_t in zip(pred_m, pred_t):
        inst_m, inst_t = p_m.pred_instances, p_t.pred_instances
        assert len(inst_m) > 0, 'nothing detected: the comparison is empty'
        assert torch.equal(inst_t.labels, inst_m.labels)
        torch.testing.assert_close(inst_t.scores, inst_m.scores, atol=1e-5,
                                   rtol=0)
        torch.testing.assert_close(inst_t.bboxes, inst_m.bboxes, atol=1e-4,
                                   rtol=0)
        assert torch.equal(inst_t.masks, inst_m.masks)


class _ExtRecorder:
    """Stands in for one mmcv module's ``ext_module``; records names."""

    def __init__(self, ext, seen):
        self._ext, self._seen = ext, seen

    def __getattr__(self, name):
        self._seen.add(name)
        return getattr(self._ext, name)


@pytest.mark.parametrize('config', [
    'mask-rcnn_patchconvnet-tiny_fpn_300i_demo.py',
    'mask-rcnn_supervit-tiny_fpn_300i_demo.py',
    'supervit-tiny_upernet_1xb4-300i_demo-128x128.py',
])
def test_demo_configs_call_only_routed_kernels(monkeypatch, config):
    """Every compiled mmcv op a train + test step reaches is routed: a new
    op on these paths would fail here (the full-size configs reach the same
    ops; see the module docstring of mmsupervit.ops.portable)."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    seen = set()
    for name, module in list(sys.modules.items()):
        if name.startswith('mmcv.ops.') and hasattr(module, 'ext_module'):
            monkeypatch.setattr(module, 'ext_module',
                                _ExtRecorder(module.ext_module, seen))
    cfg = Config.fromfile(osp.join(DEMO, config))
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    if cfg.default_scope == 'mmdet':
        _train_and_test_step(model, _det_batch(model))
        assert seen == set(ROUTED_OPS)
    else:
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        size = tuple(cfg.model.data_preprocessor.size)
        samples = []
        for _ in range(2):  # batch norm after pooling needs two images
            s = SegDataSample(metainfo=dict(img_shape=size, pad_shape=size,
                                            ori_shape=size))
            s.gt_sem_seg = PixelData(data=torch.randint(0, 5, (1, ) + size))
            samples.append(s)
        imgs = [torch.randint(0, 256, (3, ) + size, dtype=torch.uint8)
                for _ in samples]
        data = model.data_preprocessor(
            dict(inputs=imgs, data_samples=samples), training=True)
        model.train()
        sum(v for k, v in model(**data, mode='loss').items()
            if 'loss' in k).backward()
        model.eval()
        with torch.no_grad():
            model(**data, mode='predict')
        assert seen <= set(ROUTED_OPS)  # UperNet: none at all
