"""The command line shared by ``tools/model_converters/*2mmsupervit.py``.

Each converter script keeps what is its family's own (the conversion
function, extra options, extra metadata); the arguments, the classifier
modes, writing the result and turning a :class:`CheckpointError` into a
one-line exit message are here.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Callable, Optional, Sequence, Type

import torch

from .checkpoint import CheckpointError


def converter_parser(backbone: Type, description: str
                     ) -> argparse.ArgumentParser:
    """The arguments every converter takes.

    Args:
        backbone (type): The backbone class (``arch_names()`` gives the
            ``--arch`` choices).
        description (str): The ``--help`` description.

    Returns:
        argparse.ArgumentParser: ``src``, ``dst``, ``--arch`` and the
        mutually exclusive ``--classifier`` / ``--to-official``; a script
        adds its own options to it.
    """
    family = backbone.__name__.lower()
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help='official checkpoint (path or URL)')
    parser.add_argument('dst', help='output path')
    parser.add_argument(
        '--arch',
        choices=backbone.arch_names(),
        help='check every key and shape against this arch (by default only '
        'the family is checked)')
    layout = parser.add_mutually_exclusive_group()
    layout.add_argument(
        '--classifier',
        action='store_true',
        help='write the whole official classifier (head included) in the '
        'layout of the mmpretrain classification config '
        f'(configs/{family}/*_in1k.py): backbone.* + head.fc.*')
    layout.add_argument(
        '--to-official',
        action='store_true',
        help='the reverse: SRC is a checkpoint of the mmpretrain '
        'classification config (e.g. work_dirs/.../epoch_*.pth); DST gets '
        'the official layout')
    return parser


def save_converted(dst: str, state_dict: dict, note: str = '',
                   **meta) -> None:
    """Write ``{'state_dict': state_dict, 'meta': meta}`` to ``dst``
    (folders created) and print what was saved.

    Args:
        dst (str): Output path.
        state_dict (dict): The converted backbone state dict.
        note (str): Appended to the printed count, e.g. ``' (12 blocks)'``.
            Defaults to ``''``.
        **meta: The ``meta`` entries (source, converter, recognised arch,
            ...), stored with the mmsupervit version.
    """
    import mmsupervit
    meta.setdefault('mmsupervit_version', mmsupervit.__version__)
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(dict(state_dict=state_dict, meta=meta), dst)
    print(f'saved {len(state_dict)} tensors{note} to {dst}')


def run_converter(main: Callable[[Optional[Sequence[str]]], None]) -> None:
    """Run a converter's ``main`` as a script: a refused checkpoint ends
    with ``error: <message>`` and exit status 1, nothing written."""
    try:
        main(None)
    except CheckpointError as err:
        sys.exit(f'error: {err}')
