"""CPUSyncBatchNorm and CPUDistributedDataParallel: two gloo processes with a
half batch each compute what batch norm computes on the whole batch."""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

from mmsupervit.engine.cpu_distributed import (CPUDistributedDataParallel,
                                               CPUSyncBatchNorm,
                                               convert_cpu_sync_batchnorm)

WORLD = 2
# float32 reductions in another order (all-reduced partial sums against one
# pass over the batch): a few ulps of values of order 1
ATOL = 1e-5


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _data(dims):
    g = torch.Generator().manual_seed(0)
    shape = (2 * WORLD, 3) + (5, ) * (dims - 2)
    x = torch.randn(shape, generator=g) * 3 + 2
    upstream = torch.randn(shape, generator=g)
    return x, upstream


CASES = [(2, 0.1), (4, 0.1), (4, None)]  # input dims, momentum
_BN = {2: nn.BatchNorm1d, 4: nn.BatchNorm2d}


def _run(bn, x, upstream):
    """A training step, a second forward (running statistics), eval."""
    with torch.no_grad():
        bn.weight.copy_(torch.linspace(0.5, 1.5, 3))
        bn.bias.copy_(torch.linspace(-1, 1, 3))
    x = x.clone().requires_grad_()
    out = bn(x)
    (out * upstream).sum().backward()
    bn(x.detach() * 0.5)
    bn.eval()
    return dict(out=out.detach(), x_grad=x.grad, w_grad=bn.weight.grad,
                b_grad=bn.bias.grad, state=bn.state_dict(),
                eval_out=bn(x.detach()).detach(), cls=type(bn).__name__)


def _conv_bn(norm):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), norm(4))


def _ddp_step(part=slice(None)):
    """Gradient of the conv under a BN: the wrapper from mmengine's
    registry (as the Runner builds it) around a SyncBN model, or plain BN
    on the whole batch (``part`` all of it)."""
    x, _ = _data(4)
    upstream = torch.randn((2 * WORLD, 4, 3, 3),
                           generator=torch.Generator().manual_seed(1))
    if part == slice(None):
        model = _conv_bn(nn.BatchNorm2d)
        scale = 1 / WORLD  # DDP averages the processes' gradients
    else:
        from mmengine.registry import MODEL_WRAPPERS
        model = MODEL_WRAPPERS.build(
            dict(type='mmsupervit.CPUDistributedDataParallel',
                 module=_conv_bn(nn.SyncBatchNorm),
                 broadcast_buffers=False, device_ids=None))
        assert isinstance(model.module[1], CPUSyncBatchNorm)
        scale = 1
    out = model(x[part])
    (out * upstream[part]).sum().mul(scale).backward()
    conv = model[0] if part == slice(None) else model.module[0]
    return dict(conv_grad=conv.weight.grad, cls=type(model).__name__)


def _worker(rank, port, out_path):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=WORLD)
    try:
        results = []
        for dims, momentum in CASES:
            x, upstream = _data(dims)
            part = slice(rank * 2, rank * 2 + 2)
            # what mmengine's sync_bn='torch' makes of a BN, converted by us
            bn = convert_cpu_sync_batchnorm(
                nn.Sequential(nn.SyncBatchNorm(3, momentum=momentum)))[0]
            results.append(_run(bn, x[part], upstream[part]))
        results.append(_ddp_step(part))
        # rank 1 brings no images: rank 0's batch sets the statistics
        x, upstream = _data(4)
        part = slice(None) if rank == 0 else slice(0)
        results.append(_run(CPUSyncBatchNorm(3), x[part], upstream[part]))
        # one value per channel over all processes: the same clear error
        bn = CPUSyncBatchNorm(3)
        try:
            bn(x[:1, :, :1, :1] if rank == 0 else x[:0])
        except ValueError as e:
            results.append(str(e))
        torch.save(results, out_path.format(rank))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope='module')
def two_process_results(tmp_path_factory):
    out_path = str(tmp_path_factory.mktemp('sync_bn') / 'rank{}.pth')
    mp.spawn(_worker, args=(_free_port(), out_path), nprocs=WORLD, join=True)
    return [torch.load(out_path.format(r)) for r in range(WORLD)]


@pytest.mark.parametrize('case', range(len(CASES)))
def test_cpu_sync_batchnorm_equals_batchnorm_on_the_whole_batch(
        two_process_results, case):
    dims, momentum = CASES[case]
    ref = _run(_BN[dims](3, momentum=momentum), *_data(dims))
    ranks = [r[case] for r in two_process_results]
    assert {r['cls'] for r in ranks} == {'CPUSyncBatchNorm'}
    for key in ('out', 'x_grad', 'eval_out'):
        got = torch.cat([r[key] for r in ranks])
        torch.testing.assert_close(got, ref[key], rtol=0, atol=ATOL)
    # each process holds the gradient of its own loss; DDP averages them,
    # the whole-batch loss is their sum
    for key in ('w_grad', 'b_grad'):
        got = sum(r[key] for r in ranks)
        torch.testing.assert_close(got, ref[key], rtol=0, atol=ATOL)
    # the same running statistics (unbiased variance) in every process
    for r in ranks:
        assert r['state'].keys() == ref['state'].keys()
        for key, value in ref['state'].items():
            torch.testing.assert_close(r['state'][key], value, rtol=0,
                                       atol=ATOL)


def test_wrapper_trains_a_syncbn_model_as_one_process_with_both_halves(
        two_process_results):
    ref = _ddp_step()
    ranks = [r[len(CASES)] for r in two_process_results]
    assert {r['cls'] for r in ranks} == {'CPUDistributedDataParallel'}
    # DDP left the same averaged gradient in both processes
    for r in ranks:
        torch.testing.assert_close(r['conv_grad'], ref['conv_grad'], rtol=0,
                                   atol=ATOL)


def test_cpu_sync_batchnorm_with_an_empty_process(two_process_results):
    ref = _run(nn.BatchNorm2d(3), *_data(4))
    full, empty = (r[len(CASES) + 1] for r in two_process_results)
    for key in ('out', 'x_grad', 'w_grad', 'b_grad', 'eval_out'):
        torch.testing.assert_close(full[key], ref[key], rtol=0, atol=ATOL)
    assert empty['out'].numel() == 0
    for key, value in ref['state'].items():
        torch.testing.assert_close(empty['state'][key], value, rtol=0,
                                   atol=ATOL)
    for r in two_process_results:
        assert 'needs more than 1 value per channel over all processes' in r[
            -1] and 'got 1' in r[-1]


def test_setup_distributed_selects_the_cpu_wrapper(monkeypatch):
    from mmengine.config import Config

    from mmsupervit.utils import runner_utils as ru
    monkeypatch.setattr(ru, '_cpu_only', lambda: True)
    monkeypatch.setattr(ru, 'init_cpu_process_group', lambda *args: None)
    cfg = Config(dict(find_unused_parameters=True))
    ru.setup_distributed(cfg, 'pytorch')
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg == dict(
        type='mmsupervit.CPUDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=True, device_ids=None)
    # a config's mmengine wrapper keeps its settings and becomes ours
    for wrapper in (dict(type='MMDistributedDataParallel',
                         broadcast_buffers=True),
                    dict(broadcast_buffers=True)):
        cfg = Config(dict(model_wrapper_cfg=wrapper))
        ru.setup_distributed(cfg, 'pytorch')
        assert cfg.model_wrapper_cfg == dict(
            type='mmsupervit.CPUDistributedDataParallel',
            broadcast_buffers=True, device_ids=None)
    # another wrapper is left to itself
    fsdp = dict(type='MMFullyShardedDataParallel')
    cfg = Config(dict(model_wrapper_cfg=fsdp))
    ru.setup_distributed(cfg, 'pytorch')
    assert cfg.model_wrapper_cfg == fsdp


def test_cpu_sync_batchnorm_without_process_group_is_batchnorm():
    x, _ = _data(4)
    bn = nn.BatchNorm2d(3)
    cpu = CPUSyncBatchNorm(3)
    cpu.load_state_dict(bn.state_dict())
    torch.testing.assert_close(cpu(x), bn(x), rtol=0, atol=0)
    torch.testing.assert_close(cpu.running_var, bn.running_var)
    with pytest.raises(ValueError, match='at least 2 dimensions'):
        cpu(torch.zeros(3))


def test_convert_shares_parameters_and_buffers():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.SyncBatchNorm(4),
                          nn.Sequential(nn.SyncBatchNorm(4, affine=False)))
    model.eval()
    params = [p for p in model.parameters()]
    state = {k: v.data_ptr() for k, v in model.state_dict().items()}
    converted = convert_cpu_sync_batchnorm(model)
    assert converted is model
    assert isinstance(model[1], CPUSyncBatchNorm)
    assert isinstance(model[2][0], CPUSyncBatchNorm)
    assert not model[2][0].affine and not model[1].training
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())
    assert all(a is b for a, b in zip(params, model.parameters()))
    assert model.state_dict().keys() == state.keys()
    assert {k: v.data_ptr() for k, v in model.state_dict().items()} == state
    # a lone SyncBatchNorm is replaced, not modified
    assert isinstance(
        convert_cpu_sync_batchnorm(nn.SyncBatchNorm(2)), CPUSyncBatchNorm)


def test_wrapper_refuses_device_ids():
    with pytest.raises(ValueError, match='device_ids must be None'):
        CPUDistributedDataParallel(nn.Linear(2, 2), device_ids=[0])
