"""Every config under configs/ builds and trains one step.

Configs are found by globbing, so a new config is covered automatically.
Nothing is downloaded: every ``init_cfg`` of type ``Pretrained`` is removed.

For each config:

* the full-size model is built on the ``meta`` device (no memory, no
  computation) and its backbone + neck run on a meta 512x512 input, which
  checks that every width (``in_channels='auto'`` or given) fits;
* a reduced-size model (same widths, norms and heads, a few blocks: see
  ``_configs.reduced_backbone``) runs loss, backward, one optimizer step with
  the config's own optimizer wrapper and parameter schedulers, and predict.
"""
import os.path as osp

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, PARAM_SCHEDULERS, init_default_scope

from _configs import (CONFIGS, DENSE_CONFIGS, FAMILIES, REPO, det_batch,
                      load_config, reduced_backbone, rel, seg_batch,
                      small_input, strip_pretrained, total_loss)


def test_configs_found():
    assert len(CONFIGS) >= 29, CONFIGS


def _load(path):
    cfg = load_config(path)
    assert cfg.get('custom_imports', {}).get('imports') == ['mmsupervit'], \
        'configs must import mmsupervit through custom_imports'
    assert str(cfg.model.backbone.type).startswith('mmsupervit.')
    scope = cfg.get('default_scope')
    assert scope in ('mmseg', 'mmdet'), scope
    init_default_scope(scope)
    strip_pretrained(cfg.model)
    return cfg


def _check_full_size_widths(cfg):
    """Build the real model on meta and run backbone + neck on meta."""
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    x = torch.empty(1, 3, 512, 512, device='meta')
    with torch.no_grad():
        feats = model.extract_feat(x)
    widths = [int(f.shape[1]) for f in feats]
    if cfg.default_scope == 'mmseg':
        aux = model.auxiliary_head if model.with_auxiliary_head else []
        aux = list(aux) if isinstance(aux, torch.nn.ModuleList) else [aux]
        for head in [model.decode_head] + aux:
            index = head.in_index
            want = ([widths[i] for i in index] if isinstance(index, (
                list, tuple)) else widths[index])
            assert head.in_channels == want, (type(head).__name__, want)
    else:
        assert widths == [model.rpn_head.in_channels] * len(widths)


def _schedulers(cfg, optim_wrapper):
    cfgs = cfg.param_scheduler
    cfgs = cfgs if isinstance(cfgs, (list, tuple)) else [cfgs]
    return [
        PARAM_SCHEDULERS.build(dict(c, optimizer=optim_wrapper)) for c in cfgs
    ]


@pytest.mark.parametrize('path', CONFIGS, ids=[rel(p) for p in CONFIGS])
def test_config_builds_and_trains_one_step(path):
    cfg = _load(path)
    _check_full_size_widths(cfg)

    small_input(cfg)
    cfg.model.backbone = reduced_backbone(cfg.model.backbone)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()

    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    schedulers = _schedulers(cfg, optim_wrapper)
    base_lr = cfg.optim_wrapper.optimizer.lr
    warmup = cfg.param_scheduler[0]
    assert warmup.type == 'LinearLR' and warmup.begin == 0
    groups = optim_wrapper.optimizer.param_groups
    for group in groups:  # the warm-up starts from its start factor
        assert group['lr'] == pytest.approx(
            base_lr * group.get('lr_scale', 1.0) * warmup.start_factor)
    if path in DENSE_CONFIGS:  # every source recipe exempts some params
        decays = {group['weight_decay'] for group in groups}
        assert 0 in decays and len(decays) > 1, \
            f'expected parameters with and without weight decay: {decays}'

    if cfg.default_scope == 'mmseg':
        data = seg_batch(model, (64, 96), cfg.model.decode_head.num_classes)
    else:
        data = det_batch(model)
    losses = model(**data, mode='loss')
    total = total_loss(losses)
    assert torch.isfinite(total), losses
    optim_wrapper.backward(total)
    trainable = [(n, p) for n, p in model.backbone.named_parameters()
                 if p.requires_grad]
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for _, p in trainable), 'no gradient reached the backbone'
    before = {n: p.detach().clone() for n, p in trainable}
    optim_wrapper.step()
    assert any(not torch.equal(before[n], p) for n, p in trainable), \
        'the optimizer step changed no backbone weight'
    lr_before = groups[0]['lr']
    for scheduler in schedulers:
        if not scheduler.by_epoch:
            scheduler.step()
    assert groups[0]['lr'] > lr_before, 'the warm-up did not raise the lr'

    model.eval()
    with torch.no_grad():
        preds = model(**data, mode='predict')
    assert len(preds) == len(data['data_samples'])
    if cfg.default_scope == 'mmseg':
        assert preds[0].pred_sem_seg.data.shape[-2:] == (64, 96)
    else:
        assert 'masks' in preds[0].pred_instances


@pytest.mark.parametrize('family', FAMILIES)
def test_model_zoo_page_lists_every_config(family):
    import glob

    import yaml
    folder = osp.join(REPO, 'configs', family)
    assert osp.isfile(osp.join(folder, 'README.md'))
    with open(osp.join(folder, 'metafile.yaml')) as f:
        meta = yaml.safe_load(f)
    listed = {m['Config'] for m in meta['Models']}
    on_disk = {
        osp.relpath(p, REPO)
        for p in glob.glob(osp.join(folder, '*.py'))
    }
    assert listed == on_disk
    with open(osp.join(folder, 'README.md')) as f:
        readme = f.read()
    for path in on_disk:
        assert f'({osp.basename(path)})' in readme, f'{path} not in README'
