"""Loading transforms that check what they load (see :mod:`..checks`).

mmseg and mmdet are optional extras of this package: each transform is
defined when its library is installed.
"""
from importlib.util import find_spec

__all__ = []

if find_spec('mmseg') is not None:
    from .loading_seg import LoadSegAnnotations  # noqa: F401
    __all__.append('LoadSegAnnotations')
if find_spec('mmdet') is not None:
    from .loading_det import LoadDetAnnotations  # noqa: F401
    __all__.append('LoadDetAnnotations')
