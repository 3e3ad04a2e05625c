"""Regenerate ``tests/data/golden`` from the official implementations.

Developer tool, never run by the tests. It imports the official model code
from checkouts of the three repositories at their pinned commits (nothing is
copied into this repository), builds tiny variants, gives them seeded weights
and records their outputs::

    git clone https://github.com/lmbxmu/SuperViT
    git -C SuperViT checkout cee8482196244775a653c44ccff81256db7048a1
    git clone -b transformer https://github.com/xxxnell/how-do-vits-work
    git -C how-do-vits-work checkout 9571ff1370f31af2f433558fbfa7bc87a97b0bab
    git clone https://github.com/facebookresearch/deit
    git -C deit checkout 7e160fe43f0252d17191b71cbb5826254114ea5b
    pip install einops            # imported by how-do-vits-work
    python tools/dev/make_golden.py --supervit SuperViT \\
        --how-do-vits-work how-do-vits-work --deit deit

(``git archive <commit> | tar -x`` of the same commits works as well.) The
imported files are checked against their git blob ids at the pinned commits
before anything runs. Run it with CPU PyTorch; it uses the vendored timm
0.4.5 of the SuperViT repository (also for PatchConvNet), so it must run in a
process that has not imported another timm (``mmsupervit`` is not imported).

Shims, all applied here and nowhere in the official files:

* ``torch.Tensor.cuda`` returns the tensor itself: SuperViT's ``Block``
  calls ``torch.zeros((B, 1)).cuda()``.
* ``models`` (how-do-vits-work) and ``lvvit``/``lvvit.models`` (SuperViT) are
  registered as bare packages, so their ``__init__`` files (model zoos,
  downloads, ``requests``/``tqdm``) never run; the model files themselves are
  imported unchanged.
* Kept-token indices are recorded by a pass-through wrapper around the
  module-level ``batch_index_select`` of each SuperViT file.

Outputs (``--out``, default ``tests/data/golden``): per tiny model a weight
recipe ``<model>.weights.json`` (tests/conftest.py writes the official-layout
checkpoint from it), reference outputs ``<model>.ref.pth``; and key manifests
``<variant>.keys.json`` of the full-size official variants. See
``tests/data/README.md`` for their contents.
"""
import argparse
import hashlib
import importlib
import importlib.util
import json
import math
import os
import os.path as osp
import sys
import types
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

SOURCES = {
    'supervit': dict(
        repo='lmbxmu/SuperViT',
        commit='cee8482196244775a653c44ccff81256db7048a1',
        blobs={
            'deit/super_deit.py': '894fa821d93ded3807f63e3f08b0370868a33217',
            'lvvit/models/super_lvvit.py':
            '0daf5a806ec0998a965b1bb6ba48be4c87d6886b',
            'lvvit/models/layers.py':
            '11e1c4c881f7491641942ebb31b787d19c20c365',
        },
        trees={'timm': '329c9afb25f2e6cc7e3eb3e1c469034d0a4eb790'}),
    'how-do-vits-work': dict(
        repo='xxxnell/how-do-vits-work',
        commit='9571ff1370f31af2f433558fbfa7bc87a97b0bab',
        blobs={
            'models/alternet.py': '7354059a3f78fdd0357fa3a02a02edf909f65ef3',
            'models/attentions.py': '213bddec8b7f13494b5271adc64b933f1e96b663',
            'models/classifier_block.py':
            'ca26bab17cfe4ed24850666326e7175ece822777',
            'models/layers.py': '2fcc169ff2a83f6f8247eeac55e75bece1e077fb',
            'models/preresnet_dnn_block.py':
            '8dd411230edfd00324d24e2cf6dad8dc6e97a6b2',
            'models/preresnet_mcdo_block.py':
            '17c248fa503b9bf5589c9e9a1b6112933fffbcc8',
            'models/resnet_dnn_block.py':
            'b7da4c9d8ce70106b00291948e55cea13d940c2c',
            'models/resnet_mcdo_block.py':
            'c66bc221aaff2330eb57e58aa03f1e9256fa758f',
        },
        trees={}),
    'deit': dict(
        repo='facebookresearch/deit',
        commit='7e160fe43f0252d17191b71cbb5826254114ea5b',
        blobs={
            'patchconvnet_models.py':
            'efc0387ee09cc2b617d429d04f7d7b1d0f33bd06'
        },
        trees={}),
}

WEIGHT_SEED = 0
INPUT_SEED = 1
MAX_INPUT_SEED = 50
SUPERVIT_RUNS = [(224, 1.0), (224, 0.7), (160, 0.5), (128, 1.0)]
# Block outputs kept in the SuperViT references: the last unpruned block, each
# pruning block (its output is already shorter), the block before each later
# pruning block, and the last block. The rest adds size, not coverage.
SUPERVIT_BLOCKS = (2, 3, 5, 6, 8, 9, 11)
# Pruning decisions (the ranking of the kept tokens and the keep/drop
# boundary) closer than this in cls-attention score could flip between two
# correct float32 implementations (measured: scores differ by ~1e-8); such an
# input is refused and the next input seed is tried.
MIN_SCORE_GAP = 1e-7

DEIT_WRAPPER = ("{'model': state_dict, 'optimizer', 'lr_scheduler', 'epoch', "
                "'model_ema', 'scaler', 'args'} (main_deit.py); only 'model' "
                'is needed')
LVVIT_WRAPPER = ("timm CheckpointSaver: {'epoch', 'arch', 'state_dict', "
                 "'optimizer', 'version', 'args', ['state_dict_ema'], "
                 "['metric']}")
ALTERNET_WRAPPER = ("{'name': model.name, 'state_dict': state_dict[, "
                    "'optimizer']} (models/__init__.py::_save)")
PCN_WRAPPER = ("{'model': state_dict, 'optimizer', 'lr_scheduler', 'epoch', "
               "'model_ema', 'scaler', 'args'} (deit main.py); only 'model' "
               'is needed')


# ----------------------------------------------------------------------------
# pinned sources
# ----------------------------------------------------------------------------
def git_blob_id(path: str) -> str:
    """The id git gives the file's content."""
    with open(path, 'rb') as f:
        data = f.read()
    return hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()


def git_tree_id(path: str) -> Optional[str]:
    """The id git gives the folder (``None`` when it holds no file).

    ``__pycache__`` folders are skipped: importing the code creates them and
    git never tracks them.
    """
    entries = []
    for name in os.listdir(path):
        full = osp.join(path, name)
        if name in ('__pycache__', '.git'):
            continue
        if osp.isdir(full) and not osp.islink(full):
            sub = git_tree_id(full)
            if sub is not None:
                entries.append((name + '/', b'40000 %s\0%s' % (
                    name.encode(), bytes.fromhex(sub))))
        else:
            mode = b'100755' if os.access(full, os.X_OK) else b'100644'
            entries.append((name, b'%s %s\0%s' % (
                mode, name.encode(), bytes.fromhex(git_blob_id(full)))))
    if not entries:
        return None
    body = b''.join(entry for _, entry in sorted(entries))
    return hashlib.sha1(b'tree %d\0' % len(body) + body).hexdigest()


def check_checkout(name: str, root: str) -> None:
    """Fail unless ``root`` holds the pinned files of source ``name``."""
    source = SOURCES[name]
    wanted = [(p, i, git_blob_id) for p, i in source['blobs'].items()]
    wanted += [(p, i, git_tree_id) for p, i in source['trees'].items()]
    for rel, expected, id_of in wanted:
        path = osp.join(root, rel)
        if not osp.exists(path):
            raise SystemExit(f'{path} not found: --{name} must be a checkout '
                             f'of {source["repo"]}')
        if id_of(path) != expected:
            raise SystemExit(
                f'{path} differs from {source["repo"]} at {source["commit"]} '
                f'(git id {id_of(path)}, expected {expected}); check out '
                'that commit')


# ----------------------------------------------------------------------------
# importing the official code
# ----------------------------------------------------------------------------
def _bare_package(name: str, path: str) -> None:
    """Register a package whose ``__init__`` does not run."""
    package = types.ModuleType(name)
    package.__path__ = [path]
    sys.modules[name] = package


def _import_file(name: str, path: str, package_dir: Optional[str] = None):
    """Import one file (or a package's ``__init__``) under ``name``."""
    spec = importlib.util.spec_from_file_location(
        name, path,
        submodule_search_locations=[package_dir] if package_dir else None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# the weight-recipe format lives with its reader, the tests
golden_weights = _import_file(
    'golden_weights', osp.join(REPO_ROOT, 'tests', 'golden_weights.py'))


def import_official(supervit: str, hdvw: str, deit: str) -> Dict:
    """Import the official modules; returns them by short name."""
    if 'timm' in sys.modules:
        raise RuntimeError('timm is already imported; the official code needs '
                           'the timm 0.4.5 vendored in the SuperViT repo')
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # shim, see top
    timm = _import_file('timm', osp.join(supervit, 'timm', '__init__.py'),
                        osp.join(supervit, 'timm'))
    assert timm.__version__ == '0.4.5', timm.__version__
    modules = dict(timm=timm)
    modules['super_deit'] = _import_file(
        'super_deit', osp.join(supervit, 'deit', 'super_deit.py'))
    _bare_package('lvvit', osp.join(supervit, 'lvvit'))
    _bare_package('lvvit.models', osp.join(supervit, 'lvvit', 'models'))
    modules['lvvit_layers'] = importlib.import_module('lvvit.models.layers')
    modules['super_lvvit'] = importlib.import_module(
        'lvvit.models.super_lvvit')
    _bare_package('models', osp.join(hdvw, 'models'))
    modules['alternet'] = importlib.import_module('models.alternet')
    modules['preresnet_dnn'] = importlib.import_module(
        'models.preresnet_dnn_block')
    modules['patchconvnet'] = _import_file(
        'patchconvnet_models', osp.join(deit, 'patchconvnet_models.py'))
    return modules


# ----------------------------------------------------------------------------
# weights
# ----------------------------------------------------------------------------
def init_range(key: str, module: nn.Module, local: str,
               tensor: torch.Tensor) -> Sequence[float]:
    """(low, high) of the uniform distribution a tensor is drawn from.

    Far from the official inits on purpose (those leave biases at 0, norms at
    1, BN statistics at 0/1 and layer scales at 1e-4), so that a test built on
    these weights catches a dropped bias, norm or statistic.
    """
    if isinstance(module, (nn.LayerNorm, nn.BatchNorm2d)):
        if local in ('weight', 'running_var'):
            return 0.5, 1.5
        if local in ('bias', 'running_mean'):
            return -0.2, 0.2
    if local == 'bias':
        return -0.2, 0.2
    if isinstance(module, (nn.Linear, nn.Conv2d)) and local == 'weight':
        bound = math.sqrt(3 / tensor[0].numel())  # std 1/sqrt(fan_in)
        return -bound, bound
    if local in ('cls_token', 'pos_embedding') or key.startswith(
            'pos_embed_list.'):
        return -0.9, 0.9
    if local in ('gamma_1', 'gamma_2'):  # PatchConvNet layer scale
        return 0.1, 0.5
    raise KeyError(f'no initialisation rule for {key} '
                   f'({type(module).__name__}.{local})')


def weight_recipe(model: nn.Module, name: str, source: str, file: str,
                  constructor: str, checkpoint: Dict) -> Dict:
    """The recipe of seeded weights for ``model`` (tests/golden_weights.py)."""
    owners = {}
    for prefix, module in model.named_modules():
        for local, _ in module.named_parameters(recurse=False):
            owners[f'{prefix}.{local}'.lstrip('.')] = (module, local)
        for local, _ in module.named_buffers(recurse=False):
            owners[f'{prefix}.{local}'.lstrip('.')] = (module, local)
    tensors = []
    for key, value in model.state_dict().items():
        if value.dtype == torch.int64:
            assert key.endswith('num_batches_tracked'), key
            tensors.append([key, list(value.shape), 'int64', 0, 0])
            continue
        assert value.dtype == torch.float32, (key, value.dtype)
        low, high = init_range(key, *owners[key], value)
        tensors.append([key, list(value.shape), 'float32', low, high])
    recipe = dict(
        format=golden_weights.RECIPE_FORMAT,
        model=name,
        repo=SOURCES[source]['repo'],
        commit=SOURCES[source]['commit'],
        file=file,
        constructor=constructor,
        seed=WEIGHT_SEED,
        checkpoint=checkpoint,
        sha256=None,
        tensors=tensors)
    recipe['sha256'] = golden_weights.state_dict_digest(
        golden_weights.recipe_state_dict(recipe))
    return recipe


def write_recipe(recipe: Dict, path: str) -> None:
    """One tensor per line, so that diffs of the recipe stay readable."""
    head = {k: v for k, v in recipe.items() if k != 'tensors'}
    text = json.dumps(head, indent=1)[:-2]
    rows = ',\n'.join('  ' + json.dumps(t) for t in recipe['tensors'])
    with open(path, 'w') as f:
        f.write(f'{text},\n "tensors": [\n{rows}\n ]\n}}\n')


def load_recipe_weights(model: nn.Module, recipe: Dict) -> None:
    checkpoint = golden_weights.materialize_checkpoint(recipe)
    key = next(k for k, v in recipe['checkpoint'].items()
               if v == '@state_dict')
    model.load_state_dict(checkpoint[key], strict=True)
    model.eval()


def make_input(*shape: int, seed: int = INPUT_SEED) -> torch.Tensor:
    stream = np.random.RandomState(seed)
    return torch.from_numpy(
        stream.standard_normal(shape).astype(np.float32))


# ----------------------------------------------------------------------------
# reference runs
# ----------------------------------------------------------------------------
class _Hooks:
    """Forward hooks that store module outputs (or inputs) by name."""

    def __init__(self):
        self.out = {}
        self.handles = []

    def output(self, name: str, module: nn.Module,
               pick: Callable = lambda o: o) -> None:
        self.handles.append(module.register_forward_hook(
            lambda m, a, o: self.out.__setitem__(name, pick(o).detach()
                                                 .clone())))

    def input(self, name: str, module: nn.Module) -> None:
        self.handles.append(module.register_forward_pre_hook(
            lambda m, a: self.out.__setitem__(name, a[0].detach().clone())))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


class FragileReference(Exception):
    """A pruning decision is too close to a tie."""


def supervit_reference(model: nn.Module, module, shape: Sequence[int],
                       lvvit: bool) -> Dict:
    """Official runs of a SuperViT model at SUPERVIT_RUNS, on the input of
    the first seed (from INPUT_SEED) whose pruning decisions are robust."""
    for seed in range(INPUT_SEED, MAX_INPUT_SEED + 1):
        try:
            ref = _supervit_runs(model, module,
                                 make_input(*shape, seed=seed), lvvit)
        except FragileReference as err:
            print(f'  input seed {seed}: {err}, next seed')
            continue
        ref['input_seed'] = seed
        return ref
    raise SystemExit('no robust input found')


def _supervit_runs(model: nn.Module, module, x: torch.Tensor,
                   lvvit: bool) -> Dict:
    ref = {'input': x}
    recorded = []
    current = {}
    original_select = module.batch_index_select

    def recording_select(tokens, idx):
        recorded.append((current['block'], idx.clone()))
        return original_select(tokens, idx)

    module.batch_index_select = recording_select
    min_gap = math.inf
    try:
        for img_size, keep in SUPERVIT_RUNS:
            hooks = _Hooks()
            hooks.output('patch_embed', model.patch_embed)
            hooks.input('tokens_in', model.blocks[0])
            for i, block in enumerate(model.blocks):
                hooks.output(f'blocks.{i}', block)
                hooks.handles.append(block.register_forward_pre_hook(
                    lambda m, a, i=i: current.__setitem__('block', i)))
                hooks.output(f'attn.{i}', block.attn, lambda o: o[1])
            hooks.output('norm', model.norm)
            if lvvit:
                hooks.output('head', model.head)
                hooks.output('aux_head', model.aux_head)
            recorded.clear()
            with torch.no_grad():
                logits = model(x, img_size, keep)
            hooks.remove()
            feats = hooks.out
            run = dict(img_size=img_size, keep_ratio=keep, logits=logits)
            if lvvit:
                run['head_logits'] = feats.pop('head')
                run['aux_logits_max'] = feats.pop('aux_head').max(1)[0]
                torch.testing.assert_close(
                    logits, run['head_logits'] + 0.25 * run['aux_logits_max'],
                    rtol=0, atol=1e-6)
            depth = len(model.blocks)
            attn = {i: feats.pop(f'attn.{i}') for i in range(depth)}
            run['tokens_per_block'] = [
                feats[f'blocks.{i}'].shape[1] for i in range(depth)]
            keep_index, orig_index = {}, {}
            orig = torch.arange(feats['tokens_in'].shape[1]).expand(
                x.shape[0], -1)
            for block, idx in recorded:
                keep_index[block] = idx
                orig = orig.gather(1, idx)
                orig_index[block] = orig
                min_gap = min(min_gap, _score_gap(attn[block], idx))
            assert sorted(keep_index) == ([] if keep == 1 else [3, 6, 9])
            run['keep_index'], run['orig_index'] = keep_index, orig_index
            stored = ['patch_embed', 'tokens_in', 'norm'] + [
                f'blocks.{i}' for i in SUPERVIT_BLOCKS]
            run['features'] = {k: feats[k] for k in stored}
            ref[f'{img_size}_{keep}'] = run
    finally:
        module.batch_index_select = original_select
    if min_gap < MIN_SCORE_GAP:
        raise FragileReference(f'a pruning decision is {min_gap:.1e} from a '
                               'tie')
    print(f'  smallest cls-score gap at a pruning decision: {min_gap:.1e}')
    return ref


def _score_gap(attn: torch.Tensor, idx: torch.Tensor) -> float:
    """Smallest score gap between consecutive kept tokens and at the
    keep/drop boundary; checks ``idx`` is the official ranking."""
    score = attn.mean(dim=1)[:, 0, 1:]
    ranked = score.sort(dim=1, descending=True)
    kept = idx.shape[1] - 1
    assert torch.equal(ranked.indices[:, :kept] + 1, idx[:, 1:])
    values = ranked.values[:, :kept + 1]
    return (values[:, :-1] - values[:, 1:]).min().item()


def stage_reference(model: nn.Module, x: torch.Tensor,
                    features: Dict[str, nn.Module]) -> Dict:
    hooks = _Hooks()
    for name, module in features.items():
        hooks.output(name, module)
    with torch.no_grad():
        logits = model(x)
    hooks.remove()
    return dict(input=x, logits=logits, features=hooks.out)


# ----------------------------------------------------------------------------
# the tiny models
# ----------------------------------------------------------------------------
def build_tiny(mods: Dict) -> List[Dict]:
    """Tiny model specs: constructor, checkpoint layout, reference run."""
    sd, lv, alt, pcn = (mods['super_deit'], mods['super_lvvit'],
                        mods['alternet'], mods['patchconvnet'])
    specs = [
        dict(name='supervit_deit_tiny', source='supervit',
             file='deit/super_deit.py',
             constructor="VisionTransformer(patch_size=16, embed_dim=32, "
             'depth=12, num_heads=2, mlp_ratio=4, qkv_bias=True, '
             'norm_layer=partial(nn.LayerNorm, eps=1e-6), num_classes=10)',
             build=lambda: sd.VisionTransformer(
                 patch_size=16, embed_dim=32, depth=12, num_heads=2,
                 mlp_ratio=4, qkv_bias=True,
                 norm_layer=partial(nn.LayerNorm, eps=1e-6), num_classes=10),
             checkpoint={'model': '@state_dict'},
             reference=lambda m: supervit_reference(
                 m, sd, (2, 3, 64, 64), lvvit=False)),
        dict(name='supervit_lvvit_tiny', source='supervit',
             file='lvvit/models/super_lvvit.py',
             constructor="LV_ViT(patch_size=16, embed_dim=32, depth=12, "
             "num_heads=2, mlp_ratio=3., p_emb='4_2', skip_lam=2., "
             'return_dense=True, mix_token=True, num_classes=10)',
             build=lambda: lv.LV_ViT(
                 patch_size=16, embed_dim=32, depth=12, num_heads=2,
                 mlp_ratio=3., p_emb='4_2', skip_lam=2., return_dense=True,
                 mix_token=True, num_classes=10),
             checkpoint={'epoch': 0, 'arch': 'super_lvvit_tiny',
                         'state_dict': '@state_dict', 'version': 2,
                         'state_dict_ema': '@state_dict'},
             reference=lambda m: supervit_reference(
                 m, mods['lvvit_layers'], (2, 3, 64, 64), lvvit=True)),
        dict(name='alternet_tiny', source='how-do-vits-work',
             file='models/alternet.py',
             constructor='AlterNet(preresnet_dnn.BasicBlock, '
             'AttentionBasicBlockB, stem=partial(StemB, pool=True), '
             'num_blocks=(1, 2, 2, 2), num_blocks2=(0, 1, 1, 1), '
             "heads=(3, 3, 3, 3), num_classes=10, name='alternet_tiny')",
             build=lambda: alt.AlterNet(
                 mods['preresnet_dnn'].BasicBlock, alt.AttentionBasicBlockB,
                 stem=partial(alt.StemB, pool=True), num_blocks=(1, 2, 2, 2),
                 num_blocks2=(0, 1, 1, 1), heads=(3, 3, 3, 3),
                 num_classes=10, name='alternet_tiny'),
             checkpoint={'name': 'alternet_tiny',
                         'state_dict': '@state_dict'},
             reference=lambda m: stage_reference(
                 m, make_input(1, 3, 224, 224), {
                     'layer3': m.layer3, 'layer4': m.layer4,
                     'classifier.0.relu': m.classifier[0].relu})),
        dict(name='patchconvnet_tiny', source='deit',
             file='patchconvnet_models.py',
             constructor='PatchConvnet(patch_size=16, embed_dim=64, depth=6, '
             'num_heads=1, qkv_bias=True, norm_layer=partial(nn.LayerNorm, '
             'eps=1e-6), Patch_layer=ConvStem, '
             'Attention_block=Conv_blocks_se, depth_token_only=1, '
             'mlp_ratio_clstk=3.0, num_classes=10)',
             build=lambda: pcn.PatchConvnet(
                 patch_size=16, embed_dim=64, depth=6, num_heads=1,
                 qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6),
                 Patch_layer=pcn.ConvStem,
                 Attention_block=pcn.Conv_blocks_se, depth_token_only=1,
                 mlp_ratio_clstk=3.0, num_classes=10),
             checkpoint={'model': '@state_dict'},
             reference=lambda m: stage_reference(
                 m, make_input(2, 3, 96, 96), {
                     'patch_embed': m.patch_embed,
                     **{f'blocks.{i}': b for i, b in enumerate(m.blocks)},
                     'blocks_token_only.0': m.blocks_token_only[0],
                     'norm': m.norm})),
    ]
    return specs


# ----------------------------------------------------------------------------
# key manifests of the full-size variants
# ----------------------------------------------------------------------------
def manifest_specs(mods: Dict) -> List[Dict]:
    alt, pcn = mods['alternet'], mods['patchconvnet']
    specs = [
        dict(variant='super_deit_s', source='supervit',
             file='deit/super_deit.py',
             constructor='super_deit_s(num_classes=1000)',
             wrapper=DEIT_WRAPPER, built_on='cpu',
             build=lambda: mods['super_deit'].super_deit_s(num_classes=1000)),
        dict(variant='super_lvvit_s', source='supervit',
             file='lvvit/models/super_lvvit.py',
             constructor='super_lvvit_s(num_classes=1000)',
             wrapper=LVVIT_WRAPPER, built_on='cpu',
             build=lambda: mods['super_lvvit'].super_lvvit_s(
                 num_classes=1000)),
    ]
    for depth in (18, 34, 50, 101, 152):
        specs.append(dict(
            variant=f'alternet_{depth}', source='how-do-vits-work',
            file='models/alternet.py',
            constructor=f'dnn_{depth}(num_classes=1000)  '
            '# stem=True (ImageNet stem)',
            wrapper=ALTERNET_WRAPPER, built_on='meta',
            build=partial(getattr(alt, f'dnn_{depth}'), num_classes=1000)))
    specs.append(dict(
        variant='alternet_tiny50', source='how-do-vits-work',
        file='models/alternet.py',
        constructor='AlterNet(preresnet_dnn.Bottleneck, AttentionBlockB, '
        'stem=partial(StemB, pool=True), num_blocks=(1,2,2,2), '
        'num_blocks2=(0,1,1,1), heads=(3,3,3,3), num_classes=10, '
        "name='alternet_tiny50')  # manifest only, no weights",
        wrapper=ALTERNET_WRAPPER, built_on='meta',
        build=lambda: alt.AlterNet(
            mods['preresnet_dnn'].Bottleneck, alt.AttentionBlockB,
            stem=partial(alt.StemB, pool=True), num_blocks=(1, 2, 2, 2),
            num_blocks2=(0, 1, 1, 1), heads=(3, 3, 3, 3), num_classes=10,
            name='alternet_tiny50')))
    for arch in ('S60', 'S120', 'B60', 'B120', 'L60', 'L120'):
        specs.append(dict(
            variant=f'patchconvnet_{arch}', source='deit',
            file='patchconvnet_models.py',
            constructor=f'{arch}(num_classes=1000)', wrapper=PCN_WRAPPER,
            built_on='meta',
            build=partial(getattr(pcn, arch), num_classes=1000)))
    return specs


def write_manifest(spec: Dict, path: str) -> None:
    """The key manifest, one state_dict key per line."""
    # SuperViT's constructors call .item() on a linspace: no meta device
    with torch.device(spec['built_on']):
        model = spec['build']()
    state = model.state_dict()
    head = dict(
        variant=spec['variant'], repo=SOURCES[spec['source']]['repo'],
        commit=SOURCES[spec['source']]['commit'], file=spec['file'],
        constructor=spec['constructor'], wrapper=spec['wrapper'],
        built_on=spec['built_on'], num_keys=len(state),
        num_parameters=sum(p.numel() for p in model.parameters()),
        num_state_dict_elements=sum(v.numel() for v in state.values()))
    rows = ',\n'.join(
        f'  {json.dumps(k)}: ' + json.dumps(
            dict(shape=list(v.shape), dtype=str(v.dtype)[len('torch.'):]),
            separators=(',', ':')) for k, v in state.items())
    text = json.dumps(head, indent=1)[:-2]
    with open(path, 'w') as f:
        f.write(f'{text},\n "keys": {{\n{rows}\n }}\n}}\n')


# ----------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--supervit', required=True,
                        help='checkout of lmbxmu/SuperViT')
    parser.add_argument('--how-do-vits-work', required=True, dest='hdvw',
                        help='checkout of xxxnell/how-do-vits-work')
    parser.add_argument('--deit', required=True,
                        help='checkout of facebookresearch/deit')
    parser.add_argument('--out', default=osp.join(REPO_ROOT, 'tests', 'data',
                                                  'golden'))
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    for name, root in (('supervit', args.supervit),
                       ('how-do-vits-work', args.hdvw), ('deit', args.deit)):
        check_checkout(name, root)
    torch.set_num_threads(1)
    mods = import_official(args.supervit, args.hdvw, args.deit)
    os.makedirs(args.out, exist_ok=True)
    for spec in build_tiny(mods):
        print(spec['name'])
        torch.manual_seed(0)
        model = spec['build']()
        recipe = weight_recipe(model, spec['name'], spec['source'],
                               spec['file'], spec['constructor'],
                               spec['checkpoint'])
        load_recipe_weights(model, recipe)
        write_recipe(recipe, osp.join(args.out,
                                      f'{spec["name"]}.weights.json'))
        torch.save(spec['reference'](model),
                   osp.join(args.out, f'{spec["name"]}.ref.pth'))
    for spec in manifest_specs(mods):
        print(spec['variant'])
        write_manifest(spec, osp.join(args.out,
                                      f'{spec["variant"]}.keys.json'))


if __name__ == '__main__':
    main()
