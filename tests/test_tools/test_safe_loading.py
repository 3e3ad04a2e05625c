"""Official checkpoints are read with torch's safe loader (weights_only=True),
from a local path and from a URL: a file that pickles anything beyond
tensors and allow-listed containers is refused with a clear error, and the
object's code never runs."""
import functools
import os.path as osp
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch


class _Payload:
    """Unpickling this calls ``open(marker, 'w')``: a visible side effect
    standing in for arbitrary code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


class _QuietHandler(SimpleHTTPRequestHandler):

    def log_message(self, *args):
        pass


@pytest.fixture
def files(tmp_path, monkeypatch):
    """(folder, base URL) of a local HTTP server over ``folder``."""
    folder = tmp_path / 'served'
    folder.mkdir()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.setattr(torch.hub, '_hub_dir', None)  # follow TORCH_HOME
    httpd = ThreadingHTTPServer(
        ('127.0.0.1', 0),
        functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f'http://127.0.0.1:{httpd.server_address[1]}'
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize('where', ['path', 'url'])
def test_pickled_code_is_refused(files, tmp_path, where):
    from mmsupervit.models.utils.checkpoint import (CheckpointError,
                                                    load_checkpoint_file)
    folder, base = files
    marker = str(tmp_path / 'code_ran')
    torch.save({'state_dict': {'w': torch.ones(2)},
                'extra': _Payload(marker)}, folder / 'evil.pth')
    source = str(folder / 'evil.pth') if where == 'path' else \
        f'{base}/evil.pth'
    with pytest.raises(CheckpointError,
                       match='does not allow, so it is not read'):
        load_checkpoint_file(source)
    assert not osp.exists(marker), 'the pickled call was executed'


@pytest.mark.parametrize('where', ['path', 'url'])
def test_tensors_and_allow_listed_objects_load(files, where):
    """A plain state dict, and an official SuperViT file's argparse.Namespace
    (allow-listed by mmsupervit.utils.compat)."""
    import argparse

    import mmsupervit  # noqa: F401  (applies the allow-list)
    from mmsupervit.models.utils.checkpoint import load_checkpoint_file
    folder, base = files
    torch.save({'model': {'w': torch.arange(3.)},
                'args': argparse.Namespace(lr=1e-3)}, folder / 'ok.pth')
    source = str(folder / 'ok.pth') if where == 'path' else f'{base}/ok.pth'
    ckpt = load_checkpoint_file(source)
    assert torch.equal(ckpt['model']['w'], torch.arange(3.))
    assert ckpt['args'].lr == 1e-3


@pytest.mark.parametrize('where', ['path', 'url'])
@pytest.mark.parametrize('content, says', [
    (b'<!DOCTYPE html><title>404</title>', "starts with b'<!DOCTYPE html><'"),
    (b'', 'is empty'),
], ids=['html-page', 'empty-file'])
def test_file_that_is_no_checkpoint_is_named_as_such(files, where, content,
                                                     says):
    """A file that is no torch.save output at all (an HTML error page saved
    as .pth, an empty file) is called that, not a safe-loader refusal; a
    downloaded one is not kept in the cache."""
    from mmsupervit.models.utils.checkpoint import (CheckpointError,
                                                    load_checkpoint_file)
    folder, base = files
    (folder / 'page.pth').write_bytes(content)
    source = str(folder / 'page.pth') if where == 'path' else (
        f'{base}/page.pth')
    with pytest.raises(CheckpointError,
                       match='is not a PyTorch checkpoint') as info:
        load_checkpoint_file(source)
    assert source in str(info.value)
    assert says in str(info.value)
    assert 'safe loader' not in str(info.value)
    if where == 'url':
        cached = osp.join(torch.hub.get_dir(), 'checkpoints', 'page.pth')
        assert not osp.exists(cached)
