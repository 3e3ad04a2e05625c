"""Data helpers: checks that name a bad file instead of training on it.

The checked loading transforms (``mmsupervit.LoadSegAnnotations``,
``mmsupervit.LoadDetAnnotations``) live in :mod:`.transforms`; the
``mmsupervit`` transform registry imports that module on its first look-up,
so importing the package does not import mmseg or mmdet.
"""
from .checks import (BadDataError, check_image_size, check_instances,
                     check_seg_map)

__all__ = [
    'BadDataError', 'check_image_size', 'check_instances', 'check_seg_map'
]
