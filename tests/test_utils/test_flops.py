import torch
import torch.nn.functional as F
from mmengine.analysis import FlopAnalyzer

from mmsupervit.utils.flops import sdpa_flop_handle


class _Attn(torch.nn.Module):

    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


def test_sdpa_counted_as_two_matmuls():
    q = torch.randn(2, 3, 10, 8)
    k = torch.randn(2, 3, 12, 8)
    v = torch.randn(2, 3, 12, 4)
    plain = FlopAnalyzer(_Attn(), (q, k, v))
    plain.unsupported_ops_warnings(False)
    # upstream counts nothing for SDPA: the reason this handle exists
    assert plain.total() == 0
    analyzer = FlopAnalyzer(_Attn(), (q, k, v))
    analyzer.set_op_handle('aten::scaled_dot_product_attention',
                           sdpa_flop_handle)
    # q @ k^T: 2*3*10*12*8, attn @ v: 2*3*10*12*4
    assert analyzer.total() == 2 * 3 * 10 * 12 * (8 + 4)
