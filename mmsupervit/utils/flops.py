"""The one FLOP counter of the project (tools and benchmarks all use it).

Counter: mmengine's :class:`~mmengine.analysis.FlopAnalyzer`, the port of
fvcore's JIT-trace counter that ``mmengine.analysis.
get_model_complexity_info`` also uses. Convention: one fused multiply-add = 1
FLOP; matmuls, convolutions and linears are counted, plus a few cheap ops
(norms: 2 per element, bilinear up-sampling / ``grid_sample``: 4 per output
element); other element-wise ops (add, GELU, softmax, ...) count 0.

Two handles are added, because the analyser has none and would count 0:

* ``aten::scaled_dot_product_attention`` (:func:`sdpa_flop_handle`): the two
  attention matmuls;
* ``aten::_native_multi_head_attention`` (:func:`native_mha_flop_handle`):
  torch's fused inference path of ``nn.MultiheadAttention``, i.e. the
  input and output projections plus the two attention matmuls.

So attention matmuls are always counted, whichever way a model runs them.
"""
from typing import Any, Dict, List, NamedTuple, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import get_shape

#: One line naming the counter, for tables and docstrings of the tools.
FLOP_COUNTER = ('mmengine FlopAnalyzer (fvcore convention, 1 multiply-add = '
                '1 FLOP) + mmsupervit attention handles (SDPA, fused MHA)')


def _prod(dims: Sequence[int]) -> int:
    out = 1
    for d in dims:
        out *= int(d)
    return out


def sdpa_flop_handle(inputs: List[Any], outputs: List[Any]) -> int:
    """FLOPs of ``aten::scaled_dot_product_attention`` (fvcore convention).

    The two matmuls cost ``B*H*Nq*Nk*(Dq + Dv)`` multiply-adds; softmax and
    the additive mask are ignored, as for other element-wise ops.
    """
    q_shape = get_shape(inputs[0])
    k_shape = get_shape(inputs[1])
    v_shape = get_shape(inputs[2])
    nq, dq = q_shape[-2], q_shape[-1]
    nk, dv = k_shape[-2], v_shape[-1]
    return _prod(q_shape[:-2]) * nq * nk * (dq + dv)


def native_mha_flop_handle(inputs: List[Any], outputs: List[Any]) -> int:
    """FLOPs of ``aten::_native_multi_head_attention`` (the fused inference
    path of ``nn.MultiheadAttention``).

    Inputs are ``(query, key, value, embed_dim, num_heads, qkv_weight, ...)``
    with (B, N, E) tensors (``batch_first``; without a batch dim B = 1):
    q/k/v projections ``E*E`` per token each, the attention matmuls
    ``B*Nq*Nk*2E`` (summed over heads) and the output projection ``E*E``
    per query token.
    """
    q_shape = get_shape(inputs[0])
    k_shape = get_shape(inputs[1])
    embed_dim = q_shape[-1]
    batch = _prod(q_shape[:-2])
    nq, nk = q_shape[-2], k_shape[-2]
    projections = batch * (2 * nq + 2 * nk) * embed_dim * embed_dim
    attention = batch * nq * nk * 2 * embed_dim
    return projections + attention


class FlopCount(NamedTuple):
    """Result of :func:`count_flops`.

    Attributes:
        total (int): FLOPs of the whole call.
        by_operator (dict): FLOPs per operator name (e.g. ``'linear'``,
            ``'scaled_dot_product_attention'``).
        uncounted_ops (tuple): Names of traced ops without a handle (they
            count 0; element-wise ops mostly).
    """
    total: int
    by_operator: Dict[str, int]
    uncounted_ops: Tuple[str, ...]


def count_flops(model: nn.Module,
                inputs: Union[torch.Tensor, Tuple[Any, ...]]) -> FlopCount:
    """Count the FLOPs of ``model(*inputs)`` (see the module docstring for
    the counter and its convention).

    The model is traced as it is (call ``eval()`` first for inference
    figures); no gradient is recorded.

    Args:
        model (nn.Module): The module to trace.
        inputs (Tensor | tuple): One tensor or the positional arguments.

    Returns:
        FlopCount: total, per-operator FLOPs and the ops counted as 0.
    """
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs, )
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.set_op_handle('aten::scaled_dot_product_attention',
                           sdpa_flop_handle)
    analyzer.set_op_handle('aten::_native_multi_head_attention',
                           native_mha_flop_handle)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    with torch.no_grad():
        total = int(analyzer.total())
        by_operator = {k: int(v) for k, v in analyzer.by_operator().items()}
        uncounted = tuple(sorted(analyzer.unsupported_ops()))
    return FlopCount(total, by_operator, uncounted)
