"""The project's registries.

Every registry is a child of the matching mmengine root registry with the
scope ``mmsupervit``. mmseg's and mmdet's registries are *siblings* of ours
under that root, so configs of both libraries reach our classes with the
scope prefix: ``type='mmsupervit.SuperViT'`` (after
``custom_imports=dict(imports=['mmsupervit'], allow_failed_imports=False)``).

Inside this package, sub-modules that are built from a config (not
instantiated directly) must be built with ``MODELS.build`` from *this*
module, or with a ``mmsupervit.`` prefixed type: a bare type name resolves in
the caller's scope (mmseg/mmdet) and never reaches a sibling scope.
"""
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

#: Backbones, necks and other ``nn.Module`` classes.
MODELS = Registry(
    'model',
    parent=MMENGINE_MODELS,
    scope='mmsupervit',
    locations=['mmsupervit.models'])

#: Optimizer-wrapper constructors (layer-wise lr decay).
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    scope='mmsupervit',
    locations=['mmsupervit.engine.optimizers'])

#: Runner hooks (``mmsupervit.CheckpointCheckHook``,
#: ``mmsupervit.RandomStateHook``).
HOOKS = Registry(
    'hook',
    parent=MMENGINE_HOOKS,
    scope='mmsupervit',
    locations=['mmsupervit.engine.hooks'])

#: Data transforms: the checked annotation loaders
#: (``mmsupervit.LoadSegAnnotations``, ``mmsupervit.LoadDetAnnotations``).
#: Their module is imported on the first look-up, so ``import mmsupervit``
#: does not import mmseg or mmdet.
TRANSFORMS = Registry(
    'transform',
    parent=MMENGINE_TRANSFORMS,
    scope='mmsupervit',
    locations=['mmsupervit.datasets.transforms'])

#: Model wrappers (``mmsupervit.CPUDistributedDataParallel``).
MODEL_WRAPPERS = Registry(
    'model_wrapper',
    parent=MMENGINE_MODEL_WRAPPERS,
    scope='mmsupervit',
    locations=['mmsupervit.engine.cpu_distributed'])
