"""``init_cfg=dict(type='Pretrained', checkpoint='http://...')`` for real: an
official-layout checkpoint served over HTTP on 127.0.0.1 is downloaded into
the torch hub cache, converted and loaded; a truncated file or an interrupted
transfer fails with CheckpointError and leaves no cache entry behind."""
import functools
import os
import os.path as osp
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from golden_weights import golden_arch

NAME = 'patchconvnet_tiny.ckpt.pth'
TINY = golden_arch('patchconvnet_tiny')


class _Handler(SimpleHTTPRequestHandler):
    """Static files; ``/cut/<name>`` announces the full length but sends
    only half of the bytes and closes (an interrupted download)."""
    requests = []

    def do_GET(self):  # noqa: N802 (http.server API)
        type(self).requests.append(self.path)
        if not self.path.startswith('/cut/'):
            return super().do_GET()
        path = osp.join(self.directory, self.path[len('/cut/'):])
        with open(path, 'rb') as f:
            data = f.read()
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data[:len(data) // 2])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch, golden):
    served = tmp_path / 'served'
    served.mkdir()
    src = golden(NAME)
    shutil.copy(src, served / NAME)
    with open(src, 'rb') as f:
        data = f.read()
    (served / 'truncated.pth').write_bytes(data[:len(data) // 3])
    torch_home = tmp_path / 'torch_home'
    monkeypatch.setenv('TORCH_HOME', str(torch_home))
    monkeypatch.setattr(torch.hub, '_hub_dir', None)  # follow TORCH_HOME
    handler = functools.partial(_Handler, directory=str(served))
    _Handler.requests = []
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield (f'http://127.0.0.1:{httpd.server_address[1]}',
               str(torch_home / 'hub' / 'checkpoints'), src)
    finally:
        httpd.shutdown()
        httpd.server_close()


def _build(url):
    import mmsupervit  # noqa: F401
    from mmsupervit.registry import MODELS
    return MODELS.build(
        dict(type='mmsupervit.PatchConvNet', arch=TINY,
             init_cfg=dict(type='Pretrained', checkpoint=url)))


def test_download_cache_convert(server):
    from mmsupervit.models.backbones.patchconvnet import convert_patchconvnet
    from mmsupervit.models.utils.checkpoint import unwrap_state_dict
    base, cache, src = server
    url = f'{base}/{NAME}'
    model = _build(url)
    model.init_weights()
    cached = osp.join(cache, NAME)
    assert osp.isfile(cached), os.listdir(osp.dirname(cache))
    with open(src, 'rb') as a, open(cached, 'rb') as b:
        assert a.read() == b.read()
    expected = convert_patchconvnet(
        unwrap_state_dict(
            torch.load(src, map_location='cpu',
                       weights_only=True)))
    own = model.state_dict()
    assert expected, 'nothing to compare'
    for key, value in expected.items():
        assert key in own, key
        assert torch.equal(own[key], value.to(own[key].dtype)), key
    # a second model reads the cache instead of downloading again
    downloads = _Handler.requests.count(f'/{NAME}')
    _build(url).init_weights()
    assert _Handler.requests.count(f'/{NAME}') == downloads == 1


@pytest.mark.parametrize('path', ['truncated.pth', f'cut/{NAME}'],
                         ids=['truncated-file', 'interrupted-transfer'])
def test_broken_download_fails_clearly_and_leaves_no_cache(server, path):
    from mmsupervit.models.utils.checkpoint import CheckpointError
    base, cache, _ = server
    model = _build(f'{base}/{path}')
    with pytest.raises(CheckpointError, match='could not read checkpoint'):
        model.init_weights()
    name = osp.basename(path)
    leftovers = os.listdir(cache) if osp.isdir(cache) else []
    assert not [f for f in leftovers if f.startswith(name[:8])], leftovers
    # the next attempt downloads again (nothing corrupt was kept)
    before = len(_Handler.requests)
    with pytest.raises(CheckpointError):
        _build(f'{base}/{path}').init_weights()
    assert len(_Handler.requests) == before + 1
