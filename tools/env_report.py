"""Versions, GPUs, the mmcv build, and where each detection op runs.

    python tools/env_report.py [--device meta ...]

Prints the versions of torch (with its CUDA and cuDNN), torchvision,
mmengine, mmcv, mmseg, mmdet and timm; the GPUs torch sees; the flavour of
the mmcv build (``cpu`` when its extension was compiled without CUDA,
``cuXY`` otherwise); and, for every op that :mod:`mmsupervit.ops` routes and
every visible device (``cpu``, each ``cuda:N``), whether it runs on an
``mmcv kernel``, the ``torchvision fallback``, or is ``unavailable``. The
table follows ``MMSUPERVIT_OPS`` (``auto``, ``mmcv`` or ``torchvision``)
like training does.

Every entry comes from running the op on a tiny input on that device.
``--device`` adds devices to the table; ``--device meta`` is how the tests
check the exit status on this CPU-only machine: mmcv has no ``meta``
kernels and torchvision's ``nms`` cannot run on ``meta`` tensors.

Exit status: 0 when every op runs on every device in the table, 1 when one
is unavailable, 2 on a bad ``MMSUPERVIT_OPS`` value or ``--device``.
"""
import argparse
import importlib
import sys
from typing import Dict, List, Optional, Sequence

import torch

from mmsupervit.ops import (OPS_ENV, ROUTED_OPS, UNAVAILABLE,
                            op_availability, ops_mode)

PACKAGES = ('torchvision', 'mmengine', 'mmcv', 'mmseg', 'mmdet', 'timm')


def _cudnn_version() -> str:
    version = torch.backends.cudnn.version()  # e.g. 92400 for 9.24.0
    if version is None:
        return 'not available'
    return f'{version // 10000}.{version % 10000 // 100}.{version % 100}'


def package_versions() -> Dict[str, str]:
    """Versions of torch (with CUDA and cuDNN) and the OpenMMLab stack."""
    versions = {
        'torch': torch.__version__,
        'torch CUDA': str(torch.version.cuda),
        'cuDNN': _cudnn_version(),
    }
    for name in PACKAGES:
        try:
            versions[name] = importlib.import_module(name).__version__
        except ImportError:
            versions[name] = 'not installed'
    return versions


def visible_gpus() -> List[str]:
    """One line per GPU torch sees: index, name, compute capability."""
    lines = []
    for i in range(torch.cuda.device_count()):
        major, minor = torch.cuda.get_device_capability(i)
        lines.append(f'cuda:{i} {torch.cuda.get_device_name(i)} '
                     f'(sm_{major}{minor})')
    return lines


def mmcv_flavour() -> str:
    """``cpu`` or ``cuXY`` from the CUDA version mmcv's extension was
    compiled with, and the compiler that built it."""
    from mmcv.ops import get_compiler_version, get_compiling_cuda_version
    cuda = get_compiling_cuda_version()
    flavour = 'cpu' if cuda == 'not available' else \
        'cu' + cuda.replace('.', '')
    return f'{flavour} (CUDA {cuda}, compiler {get_compiler_version()})'


def default_devices() -> List[torch.device]:
    """``cpu`` and every visible ``cuda:N``."""
    return [torch.device('cpu')] + [
        torch.device('cuda', i) for i in range(torch.cuda.device_count())
    ]


def availability_table(devices: Sequence[torch.device],
                       mode: Optional[str] = None
                       ) -> Dict[str, Dict[str, str]]:
    """``{op: {device: label}}`` for every routed op.

    Args:
        devices (Sequence[torch.device]): Columns of the table.
        mode (str, optional): ``MMSUPERVIT_OPS`` value. Defaults to the
            environment's.

    Returns:
        dict: Labels from :func:`mmsupervit.ops.op_availability`.
    """
    return {
        op: {str(d): op_availability(op, d, mode)
             for d in devices}
        for op in ROUTED_OPS
    }


def format_table(table: Dict[str, Dict[str, str]]) -> str:
    """The table as aligned text, one row per op."""
    devices = list(next(iter(table.values())))
    rows = [['op'] + devices] + [[op] + [table[op][d] for d in devices]
                                 for op in table]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return '\n'.join('  '.join(c.ljust(w) for c, w in zip(r, widths))
                     .rstrip() for r in rows)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--device', action='append', default=[],
        help='another device to put in the table (e.g. meta); repeatable')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        mode = ops_mode()
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    devices = default_devices()
    for name in args.device:
        try:
            devices.append(torch.device(name))
        except RuntimeError as err:
            print(f'error: --device {name!r} is not a torch device: {err}',
                  file=sys.stderr)
            return 2
    for name, version in package_versions().items():
        print(f'{name}: {version}')
    print(f'mmcv build: {mmcv_flavour()}')
    gpus = visible_gpus()
    print('GPUs: ' + ('; '.join(gpus) if gpus else 'none'))
    print(f'{OPS_ENV}: {mode}')
    table = availability_table(devices, mode)
    print(format_table(table))
    missing = [f'{op} on {d}' for op, row in table.items()
               for d, label in row.items() if label == UNAVAILABLE]
    if missing:
        print('unavailable: ' + ', '.join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
