"""Every ImageNet classification config (``configs/*/*_in1k.py``) builds
and trains one step with mmpretrain.

Nothing is downloaded (``Pretrained`` init_cfgs are removed). For each
config: the full-size classifier is built on the ``meta`` device and gives
(1, 1000) logits for a 224x224 input; a reduced-size one (same widths and
head, a few blocks) runs the config's data preprocessor (with its
Mixup/CutMix batch augments), loss, backward and one step of the config's
own optimizer wrapper and schedulers, then predicts.
"""
import re

import pytest
import torch

pytest.importorskip('mmpretrain')

from mmengine.optim import build_optim_wrapper  # noqa: E402
from mmengine.registry import (MODELS, PARAM_SCHEDULERS,  # noqa: E402
                               init_default_scope)

from _configs import (CLS_CONFIGS, FAMILIES, REPO,  # noqa: E402
                      load_config, reduced_backbone, rel, strip_pretrained)

pytestmark = pytest.mark.usefixtures('single_thread')


def test_every_family_has_classification_configs():
    names = {rel(p) for p in CLS_CONFIGS}
    assert names == {
        'configs/alternet/alternet-50_8xb128_in1k.py',
        'configs/alternet/alternet-101_8xb128_in1k.py',
        'configs/patchconvnet/patchconvnet-s60_8xb128_in1k.py',
        'configs/supervit/supervit-deit-s_8xb128_in1k.py',
    }
    assert {p.split('/')[-2] for p in CLS_CONFIGS} == set(FAMILIES)


def _load(path):
    cfg = load_config(path)
    assert cfg.custom_imports.imports == ['mmsupervit']
    assert cfg.default_scope == 'mmpretrain'
    # our backbones from mmpretrain's scope, no scope prefix needed
    assert cfg.model.backbone.type in ('AlterNet', 'PatchConvNet',
                                       'SuperViT')
    init_default_scope('mmpretrain')
    strip_pretrained(cfg.model)
    # the Runner hands the top-level preprocessor to the model
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    return cfg


@pytest.mark.parametrize('path', CLS_CONFIGS,
                         ids=[rel(p) for p in CLS_CONFIGS])
def test_full_size_classifier_on_meta(path):
    cfg = _load(path)
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
        logits = model(torch.empty(1, 3, 224, 224), mode='tensor')
    assert tuple(logits.shape) == (1, 1000)


@pytest.mark.parametrize('path', CLS_CONFIGS,
                         ids=[rel(p) for p in CLS_CONFIGS])
def test_reduced_classifier_trains_one_step(path):
    from mmpretrain.structures import DataSample
    cfg = _load(path)
    cfg.model.backbone = reduced_backbone(cfg.model.backbone)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    schedulers = [
        PARAM_SCHEDULERS.build(
            dict(s, **({'end': 10} if s.get('convert_to_iter_based') else
                       {})),
            default_args=dict(optimizer=optim_wrapper, epoch_length=2))
        for s in cfg.param_scheduler
    ]
    data = dict(
        inputs=[torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
                for _ in range(2)],
        data_samples=[DataSample().set_gt_label(c) for c in (3, 7)])
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    model.train()
    losses = model.train_step(data, optim_wrapper)
    assert torch.isfinite(losses['loss'])
    for scheduler in schedulers:
        scheduler.step()
    changed = [k for k, v in model.named_parameters()
               if not torch.equal(v, before[k])]
    assert 'head.fc.weight' in changed
    assert any(k.startswith('backbone.') for k in changed)
    model.eval()
    with torch.no_grad():
        preds = model.val_step(data)
    assert len(preds) == 2 and preds[0].pred_score.shape == (1000, )


def _recipe_tables():
    """(configs, header, rows) of each table in the "ImageNet
    classification" section of configs/RECIPES.md; a table covers the
    ``*_in1k.py`` configs named since the previous table."""
    from test_configs_recipes import RECIPES, _cells
    with open(RECIPES, encoding='utf-8') as f:
        text = f.read()
    section = text.split('\n## ImageNet classification\n', 1)[1]
    section = section.split('\n## ', 1)[0]
    tables, names, lines, k = [], [], section.splitlines(), 0
    while k < len(lines):
        line = lines[k]
        if line.startswith('| imagenet field'):
            header, rows = _cells(line), []
            k += 2
            while k < len(lines) and lines[k].startswith('|'):
                rows.append(_cells(lines[k]))
                k += 1
            tables.append((names, header, rows))
            names = []
            continue
        names += re.findall(r'`(\w+/[\w.-]+_in1k\.py)`', line)
        k += 1
    return tables


def test_recipes_md_classification_rows_match_the_configs():
    from test_configs_recipes import lookup, same, value
    tables = _recipe_tables()
    covered = sorted(c for names, _, _ in tables for c in names)
    assert covered == sorted(rel(p)[len('configs/'):] for p in CLS_CONFIGS)
    checked = 0
    for names, header, rows in tables:
        assert header[:3] == ['imagenet field', 'key', 'ours'], header
        for name in names:
            cfg = load_config(f'{REPO}/configs/{name}').to_dict()
            for row in rows:
                key = row[1].strip('`')
                assert same(lookup(cfg, key), value(row[2])), (name, key)
                checked += 1
    assert checked >= 30
