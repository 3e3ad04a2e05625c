"""FLOPs and parameters of a config's model at a given input size.

    python tools/analysis_tools/get_flops.py CONFIG [--shape 512 512]

Builds the model on CPU without loading pretrained weights and counts with
:func:`mmsupervit.utils.flops.count_flops`, the project's one counter
(mmengine's ``FlopAnalyzer``, fvcore-style: one fused multiply-add = 1 FLOP,
plus handles so that attention matmuls are counted; its docstring has the
details). Prints backbone and whole-model figures. Defaults: 512x512 for
mmseg configs, 1280x800 for mmdet ones.
"""
import argparse

import torch
from mmengine.analysis import parameter_count
from mmengine.config import Config, DictAction
from mmengine.registry import MODELS, init_default_scope

import mmsupervit  # noqa: F401
from mmsupervit.utils.flops import count_flops


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'))
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def strip_pretrained(node):
    if isinstance(node, dict):
        if isinstance(node.get('init_cfg'), dict) and \
                node['init_cfg'].get('type') == 'Pretrained':
            node['init_cfg'] = None
        for v in node.values():
            strip_pretrained(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            strip_pretrained(v)


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    strip_pretrained(cfg.model)
    scope = cfg.get('default_scope', 'mmseg')
    init_default_scope(scope)
    h, w = args.shape or ((512, 512) if scope == 'mmseg' else (800, 1280))
    model = MODELS.build(cfg.model).eval()
    x = torch.randn(1, 3, h, w)
    with torch.no_grad():
        bb_flops = count_flops(model.backbone, x).total
        if scope == 'mmseg':
            full_flops = count_flops(model, x).total  # tensor mode
        else:
            full_flops = None  # two-stage detectors: data-dependent heads
    n_bb = parameter_count(model.backbone)['']
    n_all = parameter_count(model)['']
    print(f'config: {args.config}')
    print(f'input: 1x3x{h}x{w}')
    print(f'backbone: {bb_flops / 1e9:.1f} GFLOPs, {n_bb / 1e6:.2f} M params')
    if full_flops is not None:
        print(f'model:    {full_flops / 1e9:.1f} GFLOPs, '
              f'{n_all / 1e6:.2f} M params')
    else:
        print(f'model:    {n_all / 1e6:.2f} M params (FLOPs of the RoI heads '
              'depend on the proposals; backbone FLOPs above)')


if __name__ == '__main__':
    main()
