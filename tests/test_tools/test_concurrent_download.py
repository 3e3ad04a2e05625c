"""Processes that download the same ``init_cfg`` URL at the same time.

A checkpoint is served slowly on 127.0.0.1. Separate Python processes (like
the ranks of a distributed job, or two jobs on one machine sharing
``$TORCH_HOME``) read it through
:func:`mmsupervit.models.utils.checkpoint.load_checkpoint_file`. They must all
end with the same, complete file in torch hub's cache, download it once, and
leave no temporary file behind -- also after a download was killed.
"""
import hashlib
import os
import os.path as osp
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from _tool_helpers import REPO, tool_env

NAME = 'concurrent.pth'
CHUNKS = 8

# A child process: import first, report readiness, wait for the start
# signal, then load. The sync point puts the two loads within milliseconds of
# each other however long the imports take on a busy machine.
CHILD = r'''
import hashlib, os, sys, time
from mmsupervit.models.utils.checkpoint import load_checkpoint_file
url, ready, go = sys.argv[1:4]
open(ready, 'w').close()
while not os.path.exists(go):
    time.sleep(0.01)
ckpt = load_checkpoint_file(url)
digest = hashlib.sha256()
for key in sorted(ckpt['state_dict']):
    digest.update(key.encode())
    digest.update(ckpt['state_dict'][key].numpy().tobytes())
print('DIGEST', digest.hexdigest())
'''


class _SlowHandler(BaseHTTPRequestHandler):
    """Serves ``payload`` in CHUNKS pieces with a pause after each one.

    With ``stall_first``, the first request sends half of the file and then
    hangs (a download that will be killed).
    """
    payload = b''
    delay = 0.15
    stall_first = False
    requests = []

    def do_GET(self):  # noqa: N802 (http.server API)
        cls = type(self)
        cls.requests.append(self.path)
        data = cls.payload
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        if cls.stall_first and len(cls.requests) == 1:
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            time.sleep(60)
            return
        step = -(-len(data) // CHUNKS)
        for start in range(0, len(data), step):
            self.wfile.write(data[start:start + step])
            self.wfile.flush()
            time.sleep(cls.delay)

    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    """(url, torch_home, source bytes, digest of the tensors)."""
    gen = torch.Generator().manual_seed(0)
    state = {f'w{i}': torch.randn(256, 256, generator=gen) for i in range(8)}
    src = tmp_path / NAME
    torch.save({'state_dict': state}, src)
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].numpy().tobytes())
    _SlowHandler.payload = src.read_bytes()
    _SlowHandler.requests = []
    _SlowHandler.stall_first = False
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), _SlowHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield (f'http://127.0.0.1:{httpd.server_address[1]}/{NAME}',
               str(tmp_path / 'torch_home'), _SlowHandler.payload,
               digest.hexdigest())
    finally:
        httpd.shutdown()
        httpd.server_close()


def _start(url, torch_home, tmp_path, tag):
    env = tool_env()
    env['TORCH_HOME'] = torch_home
    ready = str(tmp_path / f'ready_{tag}')
    go = str(tmp_path / 'go')
    proc = subprocess.Popen(
        [sys.executable, '-c', CHILD, url, ready, go], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, ready


def _wait_ready(procs, timeout=240):
    deadline = time.time() + timeout
    while not all(osp.exists(ready) for _, ready in procs):
        for proc, _ in procs:
            assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.time() < deadline, 'child processes did not start'
        time.sleep(0.05)


def _cache_listing(torch_home):
    cache = osp.join(torch_home, 'hub', 'checkpoints')
    return sorted(f for f in os.listdir(cache) if f != '.locks'), cache


@pytest.mark.slow
def test_two_processes_download_once_and_agree(served, tmp_path):
    url, torch_home, payload, digest = served
    procs = [_start(url, torch_home, tmp_path, tag) for tag in 'ab']
    _wait_ready(procs)
    (tmp_path / 'go').touch()
    outputs = []
    for proc, _ in procs:
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0, out[-3000:]
        outputs.append(out)
    # both read exactly the served tensors
    for out in outputs:
        assert f'DIGEST {digest}' in out, out[-3000:]
    # one complete file under the cache name, nothing else
    files, cache = _cache_listing(torch_home)
    assert files == [NAME], files
    with open(osp.join(cache, NAME), 'rb') as f:
        assert f.read() == payload
    # the second process waited for the first download instead of repeating
    # it (the download takes CHUNKS x delay = 1.2 s, the loads start together)
    assert _SlowHandler.requests == [f'/{NAME}'], _SlowHandler.requests


@pytest.mark.slow
def test_killed_download_leaves_nothing_behind(served, tmp_path):
    url, torch_home, payload, digest = served
    _SlowHandler.stall_first = True
    proc, ready = _start(url, torch_home, tmp_path, 'killed')
    _wait_ready([(proc, ready)])
    (tmp_path / 'go').touch()
    cache = osp.join(torch_home, 'hub', 'checkpoints')
    deadline = time.time() + 120
    # wait until a good part of the half that is sent has arrived in the
    # temporary file (the writer buffers a few KiB)
    while True:
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.time() < deadline, 'the download did not start'
        partial = [f for f in os.listdir(cache)
                   if f.endswith('.partial')] if osp.isdir(cache) else []
        sizes = [osp.getsize(osp.join(cache, f)) for f in partial]
        if sizes and max(sizes) >= len(payload) // 4:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    files, _ = _cache_listing(torch_home)
    assert NAME not in files, 'a partial download took the cache name'
    assert files and all(f.endswith('.partial') for f in files), files

    # the next process downloads again, gets the full file and removes the
    # killed download's temporary file
    proc, ready = _start(url, torch_home, tmp_path, 'next')
    _wait_ready([(proc, ready)])
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out[-3000:]
    assert f'DIGEST {digest}' in out, out[-3000:]
    files, cache = _cache_listing(torch_home)
    assert files == [NAME], files
    with open(osp.join(cache, NAME), 'rb') as f:
        assert f.read() == payload
    assert len(_SlowHandler.requests) == 2
