"""tools/setup_env.sh --dry-run: which mmcv ops flavour it would build, with
which environment, into which cache, and which prebuilt wheels it would take.

Nothing is built or installed: the dry run reads the venv that runs these
tests and stops after printing its plan (``DRYRUN key=value`` lines).
"""
import os
import os.path as osp
import subprocess
import sys
import zipfile

import pytest
import torch

from _tool_helpers import REPO

SETUP = osp.join(REPO, 'tools', 'setup_env.sh')
TORCH = torch.__version__.split('+')[0]
CUDA_TAG = 'cu' + (torch.version.cuda or '').replace('.', '')
PYTAG = f'cp{sys.version_info[0]}{sys.version_info[1]}'
WHEEL = f'mmcv-2.1.0-{PYTAG}-{PYTAG}-linux_x86_64.whl'
needs_cuda_torch = pytest.mark.skipif(
    torch.version.cuda is None, reason='torch here is a CPU-only build')


def dry_run(tmp_path, venv=sys.prefix, **env_vars):
    """Run the set-up's dry run; returns (plan dict, env dict, process)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('FORCE_CUDA', 'TORCH_CUDA_ARCH_LIST', 'MAX_JOBS',
                        'CUDA_HOME', 'MMSUPERVIT_WHEELHOUSE')}
    env.update(VENV=venv, MMSUPERVIT_CACHE=str(tmp_path / 'cache'),
               OMP_NUM_THREADS='1')
    env.update(env_vars)
    proc = subprocess.run(['bash', SETUP, '--dry-run'], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    plan, build_env = {}, {}
    for line in proc.stdout.splitlines():
        if line.startswith('DRYRUN '):
            key, _, value = line[len('DRYRUN '):].partition('=')
            if key.startswith('env.'):
                build_env[key[4:]] = value
            else:
                plan[key] = value
    return plan, build_env, proc


def test_flavours_environments_and_cache_keys(tmp_path):
    plans = {}
    for force in (None, '0'):
        extra = {} if force is None else {'FORCE_CUDA': force}
        plan, env, proc = dry_run(tmp_path, MAX_JOBS='3', **extra)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert plan['flavour'] == 'cpu'
        # mmcv's setup.py builds CUDA ops when it sees a GPU: hidden
        assert env['FORCE_CUDA'] == '0' and env['CUDA_VISIBLE_DEVICES'] == ''
        assert env['MMCV_WITH_OPS'] == '1' and env['MAX_JOBS'] == '3'
        assert 'TORCH_CUDA_ARCH_LIST' not in env
        assert plan['cache_dir'] == str(tmp_path / 'cache' / 'wheels' /
                                        f'torch-{TORCH}-cpu')
        assert plan['build'].endswith('wheel --no-build-isolation --no-deps '
                                      f"-w {plan['cache_dir']} "
                                      '<temporary folder>/mmcv-2.1.0')
        plans[force] = plan
    if torch.version.cuda is None:
        return
    plan, env, proc = dry_run(tmp_path, FORCE_CUDA='1',
                              TORCH_CUDA_ARCH_LIST='9.0')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert plan['flavour'] == f'{CUDA_TAG}-sm_90'
    assert env['FORCE_CUDA'] == '1' and env['TORCH_CUDA_ARCH_LIST'] == '9.0'
    assert 'CUDA_VISIBLE_DEVICES' not in env and env['MAX_JOBS'] == '2'
    assert plan['cache_dir'].endswith(f'torch-{TORCH}-{CUDA_TAG}-sm_90')
    assert plan['cache_dir'] != plans[None]['cache_dir']
    # a toolkit of torch's CUDA major, or NVIDIA's packages pinned to it
    home = plan['cuda_home']
    if home.startswith('pip:'):
        assert f'nvidia-cuda-nvcc=={torch.version.cuda}.*' in home
        assert f'nvidia-nvvm=={torch.version.cuda}.*' in home
    else:
        assert osp.isfile(osp.join(home, 'bin', 'nvcc'))
        assert plan['nvcc_release'].split('.')[0] == \
            torch.version.cuda.split('.')[0]
    # torch's CUDA headers include cusparse.h & co., which a compiler-only
    # toolkit lacks: the build searches the headers of torch's NVIDIA packages
    # (the first CUDA build here stopped at its first .cu unit without them)
    nvidia_inc = osp.join(osp.dirname(osp.dirname(torch.__file__)), 'nvidia',
                          f"cu{torch.version.cuda.split('.')[0]}", 'include')
    if osp.isfile(osp.join(nvidia_inc, 'cusparse.h')):
        assert osp.samefile(plan['cpath'], nvidia_inc)
    # the installed mmcv (CPU ops in this venv) does not satisfy FORCE_CUDA=1
    if plans[None]['installed_flavour'] == 'cpu':
        assert plans[None]['action'] == 'keep'
        assert plan['action'] in ('build', 'install')


@needs_cuda_torch
def test_arch_list_names_the_flavour(tmp_path):
    plan, env, proc = dry_run(tmp_path, FORCE_CUDA='1',
                              TORCH_CUDA_ARCH_LIST='9.0 8.0+PTX')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert plan['flavour'] == f'{CUDA_TAG}-sm_80+ptx-sm_90'
    _, _, proc = dry_run(tmp_path, FORCE_CUDA='1', TORCH_CUDA_ARCH_LIST='9')
    assert proc.returncode != 0
    assert "TORCH_CUDA_ARCH_LIST entry '9' is not an architecture" in \
        proc.stderr


def test_refuses_unclear_requests(tmp_path):
    _, _, proc = dry_run(tmp_path, FORCE_CUDA='yes')
    assert proc.returncode != 0
    assert "FORCE_CUDA must be 0 or 1 (or unset), got 'yes'" in proc.stderr
    if torch.cuda.is_available():
        return
    _, _, proc = dry_run(tmp_path, FORCE_CUDA='1')
    assert proc.returncode != 0 and 'DRYRUN flavour' not in proc.stdout
    if torch.version.cuda is None:
        assert 'CPU-only build' in proc.stderr
    else:
        assert 'no GPU is visible' in proc.stderr
        assert 'TORCH_CUDA_ARCH_LIST=9.0' in proc.stderr


def test_pretrain_extra_is_on_by_default_and_can_be_skipped(tmp_path,
                                                          monkeypatch):
    """mmpretrain (the ``pretrain`` extra of setup.py) is installed unless
    MMSUPERVIT_PRETRAIN=0; ``make demo``/``make test`` use the default."""
    monkeypatch.delenv('MMSUPERVIT_PRETRAIN', raising=False)
    plan, _, proc = dry_run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert plan['pretrain'] == '1'
    assert plan['extras'] == 'seg,det,tests,pretrain'
    plan, _, proc = dry_run(tmp_path, MMSUPERVIT_PRETRAIN='0')
    assert proc.returncode == 0, proc.stderr
    assert plan['pretrain'] == '0' and plan['extras'] == 'seg,det,tests'
    _, _, proc = dry_run(tmp_path, MMSUPERVIT_PRETRAIN='yes')
    assert proc.returncode != 0
    assert "MMSUPERVIT_PRETRAIN must be 0 or 1, got 'yes'" in proc.stderr
    # the extra names what setup.py declares
    with open(osp.join(REPO, 'setup.py')) as f:
        setup_py = f.read()
    assert "'pretrain': PRETRAIN" in setup_py
    assert "'mmpretrain==1.2.0'" in setup_py


def _fake_wheel(folder, cuda_code=False, flavour=None):
    """An mmcv wheel whose ``_ext`` holds CUDA registration code or not."""
    os.makedirs(folder, exist_ok=True)
    path = osp.join(folder, WHEEL)
    body = b'\x7fELF' + (b'__cudaRegisterFatBinary' if cuda_code else b'')
    with zipfile.ZipFile(path, 'w') as z:
        z.writestr(f'mmcv/_ext.cpython-{PYTAG[2:]}-x86_64-linux-gnu.so', body)
    if flavour:
        with open(path + '.flavour', 'w') as f:
            f.write(flavour + '\n')
    return path


@pytest.fixture
def venv_without_mmcv_ops(tmp_path):
    """A venv whose python sees this torch but an mmcv without ops."""
    shadow = tmp_path / 'shadow' / 'mmcv'
    shadow.mkdir(parents=True)
    (shadow / '__init__.py').write_text('')
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    python = venv / 'bin' / 'python'
    python.write_text(f'#!/bin/sh\nPYTHONPATH={shadow.parent} '
                      f'exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    return str(venv)


@pytest.mark.skipif(TORCH != '2.14.1',
                    reason='the wheelhouse is read only for torch 2.14.1')
def test_prebuilt_wheels_are_taken_by_flavour(tmp_path, venv_without_mmcv_ops):
    venv = venv_without_mmcv_ops
    house = str(tmp_path / 'house')
    cpu_wheel = _fake_wheel(house)
    # default: a CPU wheel from the wheelhouse is fine
    plan, _, proc = dry_run(tmp_path, venv, MMSUPERVIT_WHEELHOUSE=house)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert plan['installed_flavour'] == ''
    assert (plan['action'], plan['wheel']) == ('install', cpu_wheel)

    # a cache folder of older set-ups (torch version only) is read for cpu,
    # but only wheels without CUDA code
    legacy = str(tmp_path / 'cache' / 'wheels' / f'torch-{TORCH}')
    legacy_wheel = _fake_wheel(legacy)
    plan, _, proc = dry_run(tmp_path, venv, FORCE_CUDA='0')
    assert (plan['action'], plan['wheel']) == ('install', legacy_wheel)
    _fake_wheel(legacy, cuda_code=True)
    plan, _, proc = dry_run(tmp_path, venv, FORCE_CUDA='0')
    assert (plan['action'], plan['wheel']) == ('build', ''), proc.stderr
    assert "its ops are 'cuda'" in proc.stderr

    if torch.version.cuda is None:
        return
    # FORCE_CUDA=1: the CPU wheel is skipped; a wheel built here for the
    # same architectures (flavour written beside it) is taken
    flavour = f'{CUDA_TAG}-sm_90'
    plan, _, proc = dry_run(tmp_path, venv, FORCE_CUDA='1',
                            TORCH_CUDA_ARCH_LIST='9.0',
                            MMSUPERVIT_WHEELHOUSE=house)
    assert (plan['action'], plan['wheel']) == ('build', '')
    assert f"its ops are 'cpu', this set-up wants '{flavour}'" in proc.stderr
    cached = _fake_wheel(plan['cache_dir'], cuda_code=True, flavour=flavour)
    plan, _, proc = dry_run(tmp_path, venv, FORCE_CUDA='1',
                            TORCH_CUDA_ARCH_LIST='9.0',
                            MMSUPERVIT_WHEELHOUSE=house)
    assert (plan['action'], plan['wheel']) == ('install', cached)
    # ... but not for other architectures
    plan, _, proc = dry_run(tmp_path, venv, FORCE_CUDA='1',
                            TORCH_CUDA_ARCH_LIST='8.0',
                            MMSUPERVIT_WHEELHOUSE=house)
    assert plan['flavour'] == f'{CUDA_TAG}-sm_80'
    assert (plan['action'], plan['wheel']) == ('build', '')


def test_shell_scripts_parse():
    scripts = [osp.join(d, f) for d in ('tools', 'tools/dev')
               for f in sorted(os.listdir(osp.join(REPO, d)))
               if f.endswith('.sh')]
    assert len(scripts) >= 7
    for script in scripts:
        proc = subprocess.run(['bash', '-n', osp.join(REPO, script)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, (script, proc.stderr)


def test_gpu_check_dry_run_lists_what_is_missing(tmp_path):
    house = tmp_path / 'house'
    house.mkdir()
    env = dict(os.environ, PYTHON=sys.executable, GPU_CHECK_ALLOW_CPU='1')
    cmd = ['bash', osp.join(REPO, 'tools', 'dev', 'gpu_check.sh'),
           '--dry-run', str(house)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          timeout=120)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert 'MISSING wheelhouse mmcv-2.1.0.tar.gz' in out
    assert 'MISSING wheelhouse mmdet-*.whl' in out
    assert 'ok      torch: ' + torch.__version__ in out
    # the plan names the set-up script and the launcher it exercises
    assert f'PIP_NO_INDEX=1 PIP_FIND_LINKS={house}' in out
    assert 'bash tools/setup_env.sh' in out
    assert 'bash tools/dist_train.sh configs/demo/' in out
    for name in ('mmcv-2.1.0.tar.gz', 'mmengine-0.10.7-py3-none-any.whl',
                 'mmsegmentation-1.2.2-py3-none-any.whl',
                 'mmdet-3.3.0-py3-none-any.whl', 'timm-1.0.31-py3-none-any.whl',
                 'pycocotools-2.0.11-cp312-abi3-manylinux2014_x86_64.whl',
                 'shapely-2.2.0-cp312-cp312-manylinux_2_28_x86_64.whl',
                 'setuptools-80.10.2-py3-none-any.whl'):
        (house / name).write_bytes(b'')
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          timeout=120)
    missing = [line for line in proc.stdout.splitlines() if 'MISSING' in line]
    assert 'wheelhouse' not in ' '.join(missing)
    # what is left missing is the machine's (a compiler, numpy, ...): fine
    # here only if nothing is
    assert (proc.returncode == 0) == (not missing), proc.stdout
    # a wheelhouse that does not exist: usage error
    proc = subprocess.run(cmd[:-1] + [str(tmp_path / 'nowhere')], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and 'make_gpu_wheelhouse.sh' in proc.stderr
