"""Detection ops that run on every device: mmcv's kernels where the mmcv
build has them, torchvision's elsewhere (see :mod:`.portable`). Importing
this package installs the routing."""
from .portable import (MMCV_KERNEL, OPS_ENV, OPS_MODES, ROUTED_OPS,
                       TORCHVISION_FALLBACK, UNAVAILABLE, install,
                       is_installed, mmcv_has_kernel, op_availability,
                       ops_mode, select_path, torchvision_supports)

install()

__all__ = [
    'MMCV_KERNEL', 'OPS_ENV', 'OPS_MODES', 'ROUTED_OPS',
    'TORCHVISION_FALLBACK', 'UNAVAILABLE', 'install', 'is_installed',
    'mmcv_has_kernel', 'op_availability', 'ops_mode', 'select_path',
    'torchvision_supports'
]
