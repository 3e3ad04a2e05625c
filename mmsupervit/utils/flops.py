"""FLOP-count helpers shared by the analysis tools and benchmarks."""
from typing import Any, List

from mmengine.analysis.jit_handles import get_shape


def sdpa_flop_handle(inputs: List[Any], outputs: List[Any]) -> int:
    """FLOPs of ``aten::scaled_dot_product_attention`` (fvcore convention).

    mmengine's analyser has no handle for it and silently counts 0. The two
    matmuls cost ``B*H*Nq*Nk*(Dq + Dv)`` multiply-adds; softmax and the
    additive mask are ignored, as for other element-wise ops.
    """
    q_shape = get_shape(inputs[0])
    k_shape = get_shape(inputs[1])
    v_shape = get_shape(inputs[2])
    batch = 1
    for d in q_shape[:-2]:
        batch *= d
    nq, dq = q_shape[-2], q_shape[-1]
    nk, dv = k_shape[-2], v_shape[-1]
    return batch * nq * nk * (dq + dv)
