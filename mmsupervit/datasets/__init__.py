"""Data for the demo and the tests, and checks that name a bad file.

* :mod:`.demo_data` writes a small seeded synthetic dataset in the ADE20K and
  COCO layouts (imported on use, it needs OpenCV).
* :mod:`.checks` holds the checks behind the checked loading transforms
  (``mmsupervit.LoadSegAnnotations``, ``mmsupervit.LoadDetAnnotations``) of
  :mod:`.transforms`; the ``mmsupervit`` transform registry imports that
  module on its first look-up, so importing the package does not import mmseg
  or mmdet.
"""
from .checks import (BadDataError, check_image_size, check_instances,
                     check_seg_map)

__all__ = [
    'BadDataError', 'check_image_size', 'check_instances', 'check_seg_map'
]
