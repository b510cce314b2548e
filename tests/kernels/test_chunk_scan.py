"""Triton selective scan against the sequential reference: outputs, last states, every gradient.

On CPU the kernels run under TRITON_INTERPRET=1 (set by conftest.py) on tiny shapes; the
`cuda` tests repeat the checks at real shapes, including L = 2^20 and offsets past 2^31.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from genossm.kernels.selective_scan import selective_scan, selective_scan_chunked, selective_scan_ref
from genossm.kernels.selective_scan.chunk_scan import scan_config, selective_scan_triton
from genossm.kernels.selective_scan.recurrent_scan import seq_scan_config
from tensor_checks import assert_close, relative_error

# relative L2 error allowed, by input dtype: (outputs and states, gradients)
TOLERANCE = {torch.float32: (1e-4, 1e-3), torch.bfloat16: (1e-2, 2e-2), torch.float16: (2e-3, 5e-3)}

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
# the tiny cases run in the interpreter on CPU (CI), compiled on a GPU where there is one
TINY_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@dataclasses.dataclass
class Case:
    batch: int = 2
    H: int = 4
    N: int = 3
    L: int = 37
    groups: int = 2
    dtype: torch.dtype = torch.float32
    with_D: bool = True
    with_z: bool = True
    with_bias: bool = True
    softplus: bool = True
    B_varies: bool = True
    C_varies: bool = True
    initial_state: bool = True
    last_state: bool = True
    cu_seqlens: tuple[int, ...] | None = None


def make_inputs(case: Case, device=TINY_DEVICE, seed=0):
    """Random inputs (never zeros) as leaf tensors that want gradients, and the call's kwargs."""
    gen = torch.Generator(device="cpu").manual_seed(seed)

    def rand(*shape, scale=1.0, shift=0.0, dtype=case.dtype):
        t = torch.randn(*shape, generator=gen) * scale + shift
        return t.to(device=device, dtype=dtype).requires_grad_()

    b, H, N, L, G = case.batch, case.H, case.N, case.L, case.groups
    tensors = dict(
        u=rand(b, H, L),
        delta=rand(b, H, L, scale=0.5, shift=-1.0),
        A=(-torch.rand(H, N, generator=gen) - 0.2).to(device).requires_grad_(),  # fp32, as mamba
        B=rand(b, G, N, L) if case.B_varies else rand(H, N),
        C=rand(b, G, N, L) if case.C_varies else rand(H, N),
        D=rand(H) if case.with_D else None,
        z=rand(b, H, L) if case.with_z else None,
        delta_bias=rand(H, scale=0.3) if case.with_bias else None,
    )
    n_states = len(case.cu_seqlens) - 1 if case.cu_seqlens else b
    if case.initial_state:
        tensors["initial_state"] = rand(n_states, H, N, dtype=torch.float32)
    options = dict(delta_softplus=case.softplus, return_last_state=case.last_state)
    if case.cu_seqlens:
        options["cu_seqlens"] = torch.tensor(case.cu_seqlens, device=device)
    return tensors, options




def run_and_grad(scan, tensors, options, seed=1):
    """Outputs, and gradients of a random projection of them, for every tensor input."""
    result = scan(**tensors, **options)
    outputs = result if isinstance(result, tuple) else (result,)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    weights = [torch.randn(o.shape, generator=gen).to(o.device) for o in outputs]
    loss = sum((o.float() * w).sum() for o, w in zip(outputs, weights))
    leaves = {k: v for k, v in tensors.items() if v is not None}
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return outputs, dict(zip(leaves, grads))


def check_against(reference, case, tensors, options, **config):
    out_tol, grad_tol = TOLERANCE[case.dtype]
    recurrent_chunk_len = config.pop("recurrent_chunk_len", None)
    with scan_config(**config), seq_scan_config(chunk_len=recurrent_chunk_len):
        outputs, grads = run_and_grad(selective_scan_triton, tensors, options)
    expected_outputs, expected_grads = run_and_grad(reference, tensors, options)
    assert outputs[0].dtype == case.dtype
    for got, want in zip(outputs, expected_outputs):
        assert_close(got, want, out_tol, floor=1e-4)
    for name, want in expected_grads.items():
        assert grads[name].shape == want.shape and grads[name].dtype == want.dtype, name
        err = relative_error(grads[name], want, floor=1e-4)
        assert err < grad_tol, f"d{name}: relative error {err:.2e}"


CPU_CASES = {
    # every option on, 3 segments of one 16-position chunk in the backward, groups > 1
    "all_options_segments": (Case(), dict(chunk=16, bwd_segment_chunks=1, bwd_block_c=2)),
    "length1_N1_plain": (
        Case(batch=1, H=3, N=1, L=1, groups=1, with_D=False, with_z=False, with_bias=False,
             softplus=False, initial_state=False),
        dict(chunk=16),
    ),
    "N16_time_invariant_BC": (
        Case(batch=1, H=4, N=16, L=7, groups=1, B_varies=False, C_varies=False, with_z=False),
        dict(chunk=16, bwd_block_c=4),
    ),
    "varlen_with_empty_sequence": (
        Case(batch=1, H=3, N=2, L=33, groups=1, B_varies=True, C_varies=False,
             cu_seqlens=(0, 5, 5, 12, 33)),
        dict(chunk=16, bwd_segment_chunks=1),
    ),
    "bf16_N16": (Case(batch=1, H=2, N=16, L=33, groups=1, dtype=torch.bfloat16), dict(chunk=16)),
    # H not a multiple of the channel tile, several forward chunks (each saving states), segments
    "H37_L1000_tile_and_segments": (
        Case(batch=1, H=37, N=4, L=1000, groups=1),
        dict(chunk=32, bwd_block_c=16, bwd_segment_chunks=5, recurrent_chunk_len=128),
    ),
    # N = 64: the associative-scan forward (the recurrent one stops at 16) with the new backward
    "N64_fp16": (Case(batch=2, H=4, N=64, L=37, groups=2, dtype=torch.float16), dict(chunk=16)),
    # packed sequences whose boundaries fall inside segments and chunks; L = 1 sequences
    "varlen_boundaries_inside_segments": (
        Case(batch=1, H=5, N=3, L=100, groups=1, cu_seqlens=(0, 1, 40, 40, 41, 77, 100)),
        dict(chunk=16, bwd_segment_chunks=2, recurrent_chunk_len=32),
    ),
}


@pytest.mark.parametrize("name", list(CPU_CASES))
def test_triton_scan_matches_sequential_reference(name):
    case, config = CPU_CASES[name]
    tensors, options = make_inputs(case)
    check_against(selective_scan_ref, case, tensors, options, **config)


def test_dispatch_reaches_triton_backend():
    case = Case(batch=1, H=2, N=2, L=5, groups=1)
    tensors, options = make_inputs(case)
    got = selective_scan(**tensors, **options, backend="triton")
    want = selective_scan_ref(**tensors, **options)
    assert_close(got[0], want[0], 1e-5, "y", floor=1e-4)
    assert_close(got[1], want[1], 1e-5, "last_state", floor=1e-4)


@pytest.mark.parametrize("scan", [selective_scan_triton, selective_scan_chunked])
def test_single_group_3d_B_C_layout(scan):
    """mamba_ssm's (batch, N, L) B/C: same outputs and gradients as the (batch, 1, N, L) layout."""
    case = Case(batch=2, H=4, N=3, L=21, groups=1, initial_state=False)
    tensors, options = make_inputs(case)
    flat = {k: (v.detach().squeeze(1).requires_grad_() if k in "BC" else v) for k, v in tensors.items()}
    got, got_grads = run_and_grad(scan, flat, options)
    want, want_grads = run_and_grad(selective_scan_ref, tensors, options)
    for a, b in zip(got, want):
        assert_close(a, b, 1e-4, floor=1e-4)
    for name in ("B", "C"):
        assert got_grads[name].shape == flat[name].shape
        assert_close(got_grads[name], want_grads[name].squeeze(1), 1e-3, f"d{name}", floor=1e-4)


def test_rejects_float64_with_a_hint():
    case = Case(batch=1, H=2, N=2, L=5, groups=1, dtype=torch.float64)
    tensors, options = make_inputs(case)
    with pytest.raises(TypeError, match="backend='reference'"):
        selective_scan_triton(**tensors, **options)


@cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_real_shapes_match_chunked_reference(dtype):
    case = Case(batch=2, H=64, N=16, L=4099, groups=2, dtype=dtype)
    tensors, options = make_inputs(case, device="cuda")
    check_against(selective_scan_chunked, case, tensors, options)


@cuda
def test_gpu_varlen_segments_match_reference():
    case = Case(batch=1, H=16, N=16, L=3000, groups=1, cu_seqlens=(0, 1, 1000, 1001, 2500, 3000))
    tensors, options = make_inputs(case, device="cuda")
    check_against(selective_scan_chunked, case, tensors, options, bwd_segment_chunks=3)


@cuda
def test_gpu_length_2_20_forward_matches_chunked_reference():
    case = Case(batch=1, H=8, N=16, L=1 << 20, groups=1, dtype=torch.bfloat16)
    tensors, options = make_inputs(case, device="cuda")
    with torch.no_grad():
        got = selective_scan_triton(**tensors, **options)
        want = selective_scan_chunked(**tensors, **options, chunk_size=256)
    assert_close(got[0], want[0], 1e-2, floor=1e-4)
    assert_close(got[1], want[1], 1e-4, floor=1e-4)


@cuda
def test_gpu_backward_offsets_past_2_31_are_correct():
    """Training past 2^31 elements: the last channels' gradients must come from their own rows."""
    H, L, N = 1040, 1 << 21, 16
    gen = torch.Generator(device="cuda").manual_seed(0)

    def rand(*shape, scale=1.0, shift=0.0):
        return (torch.randn(*shape, device="cuda", generator=gen) * scale + shift).to(torch.bfloat16)

    u, delta, z = rand(1, H, L), rand(1, H, L, scale=0.5, shift=-1.0), rand(1, H, L)
    B, C = rand(1, 1, N, L), rand(1, 1, N, L)
    A = -torch.rand(H, N, device="cuda", generator=gen) - 0.2
    D, bias = torch.randn(H, device="cuda", generator=gen), torch.randn(H, device="cuda", generator=gen)
    dout = rand(1, H, L)
    tail = slice(H - 4, H)  # rows whose offsets pass 2^31

    def grads(scan, u, delta, z, A, D, bias, dout, **extra):
        leaves = [t.detach().requires_grad_() for t in (u, delta, z, A, D, bias)]
        y = scan(leaves[0], leaves[1], leaves[3], B, C, leaves[4], leaves[2], leaves[5],
                 delta_softplus=True, **extra)
        y.backward(dout)
        return [y.detach()] + [t.grad for t in leaves]

    got = grads(selective_scan_triton, u, delta, z, A, D, bias, dout)
    got = [got[0][:, tail], got[1][:, tail], got[2][:, tail], got[3][:, tail], got[4][tail],
           got[5][tail], got[6][tail]]
    want = grads(selective_scan_chunked, u[:, tail], delta[:, tail], z[:, tail], A[tail], D[tail],
                 bias[tail], dout[:, tail], chunk_size=256)
    for name, a, b in zip(("y", "du", "ddelta", "dz", "dA", "dD", "ddelta_bias"), got, want):
        assert_close(a, b, 2e-2, name, floor=1e-4)


@cuda
def test_gpu_offsets_past_2_31_are_correct():
    """batch * channels * length > 2^31: the last channels must still read their own rows."""
    H, L, N = 1040, 1 << 21, 16
    gen = torch.Generator(device="cuda").manual_seed(0)
    u = torch.randn(1, H, L, device="cuda", dtype=torch.bfloat16, generator=gen)
    delta = torch.randn(1, H, L, device="cuda", dtype=torch.bfloat16, generator=gen) * 0.5 - 1
    A = -torch.rand(H, N, device="cuda", generator=gen) - 0.2
    B = torch.randn(1, 1, N, L, device="cuda", dtype=torch.bfloat16, generator=gen)
    C = torch.randn(1, 1, N, L, device="cuda", dtype=torch.bfloat16, generator=gen)
    with torch.no_grad():
        y, last = selective_scan_triton(u, delta, A, B, C, delta_softplus=True, return_last_state=True)
        tail = slice(H - 4, H)  # rows whose offsets pass 2^31
        y_ref, last_ref = selective_scan_chunked(
            u[:, tail], delta[:, tail], A[tail], B, C, delta_softplus=True, return_last_state=True,
            chunk_size=256,
        )
    assert_close(y[:, tail], y_ref, 1e-2, floor=1e-4)
    assert_close(last[:, tail], last_ref, 1e-4, floor=1e-4)
