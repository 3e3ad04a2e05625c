"""mmsupervit: SuperViT, AlterNet and PatchConvNet backbones for mmseg/mmdet.

Importing the package applies the stack's compatibility fixes
(:mod:`mmsupervit.utils.compat`) and registers every model and optimizer
wrapper constructor in the ``mmsupervit`` scope.
"""
from .utils import compat as _compat  # noqa: F401  (must run first)
from .version import __version__, version_info
from . import engine, models  # noqa: F401,E402  (registration side effects)
from . import ops  # noqa: F401,E402  (routes mmcv kernels a device lacks)

__all__ = ['__version__', 'version_info']
