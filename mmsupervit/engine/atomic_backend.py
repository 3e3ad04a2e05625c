"""Checkpoint files that are never left half-written under their name.

mmengine 0.10.7 writes a checkpoint with ``LocalBackend.put``: ``open(path,
'wb')`` and one ``write``. A run killed during that write leaves a truncated
file under the final name. :class:`AtomicLocalBackend` writes to a temporary
file beside it, flushes it to disk and renames it onto the name (atomic on one
file system), so a file under a checkpoint's name is always complete.

It is registered as the mmengine file backend ``'mmsupervit_atomic_local'``;
``tools/train.py`` selects it for the checkpoint hook of local work dirs
(``default_hooks.checkpoint.backend_args=dict(backend=...)``), through
:func:`mmsupervit.utils.runner_utils.make_checkpoints_resumable`.
"""
import os
import os.path as osp
import uuid
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

BACKEND_NAME = 'mmsupervit_atomic_local'


class AtomicLocalBackend(LocalBackend):
    """mmengine's local backend whose ``put`` is atomic."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write ``obj`` to ``filepath`` through a temporary file and a rename.

        Args:
            obj (bytes): Data to be written.
            filepath (str or Path): Destination; its folder is created.
        """
        filepath = str(filepath)
        os.makedirs(osp.dirname(osp.abspath(filepath)), exist_ok=True)
        tmp = f'{filepath}.{uuid.uuid4().hex}.tmp'
        try:
            with open(tmp, 'wb') as f:
                f.write(obj)
                f.flush()
                # on disk before the rename: after a crash of the machine the
                # name points to complete data, not to unwritten pages
                os.fsync(f.fileno())
            os.replace(tmp, filepath)
        finally:
            if osp.exists(tmp):
                os.remove(tmp)


register_backend(BACKEND_NAME, AtomicLocalBackend, force=True)
