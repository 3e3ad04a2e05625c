import torch
import torch.nn.functional as F
from mmengine.analysis import FlopAnalyzer

from mmsupervit.utils.flops import count_flops, sdpa_flop_handle


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


class _MHA(torch.nn.Module):

    def __init__(self):
        super().__init__()
        self.attn = torch.nn.MultiheadAttention(32, 4, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, need_weights=False)[0]


def test_fused_mha_counted_like_the_unfused_path():
    """In eval mode without grad, torch runs ``nn.MultiheadAttention`` as one
    ``aten::_native_multi_head_attention`` op, which the analyser counts as
    0; our handle must give what the unfused path (linears + SDPA) gives."""
    torch.manual_seed(0)
    model = _MHA()
    x = torch.randn(2, 10, 32)
    fused = count_flops(model.eval(), x)
    assert set(fused.by_operator) == {'_native_multi_head_attention'}
    unfused = count_flops(model.train(), x)
    assert 'linear' in unfused.by_operator
    # q, k, v and out projections: 4 * 2*10 tokens * 32*32; attention
    # matmuls: 2 * 10*10 * 2*32
    expected = 4 * 20 * 32 * 32 + 2 * 10 * 10 * 2 * 32
    assert fused.total == unfused.total == expected


def test_count_flops_reports_uncounted_ops():
    out = count_flops(_Attn(), (torch.randn(1, 2, 4, 8), ) * 3)
    assert out.total == 1 * 2 * 4 * 4 * 16
    assert out.by_operator == {'scaled_dot_product_attention': out.total}
    assert out.uncounted_ops == ()
