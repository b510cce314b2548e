"""Sequential-time Triton selective scan (forward only) against the sequential reference.

On CPU the kernels run under TRITON_INTERPRET=1 (set by conftest.py) on tiny shapes, with short
chunks forced so that the chunk pass, the chain and the output pass all run; the `cuda` tests
repeat the checks at real shapes against the chunked reference and the associative-scan Triton forward.
"""

from __future__ import annotations

import pytest
import torch

import generate_recurrent_scan_kernels
from genossm.kernels.selective_scan import selective_scan_chunked, selective_scan_ref
from genossm.kernels.selective_scan.chunk_scan import associative_forward, selective_scan_triton
from genossm.kernels.selective_scan.recurrent_scan import (
    selective_scan_seq,
    seq_scan_config,
    seq_scan_supports,
)
from tensor_checks import assert_close

# relative L2 error allowed for y (in u's dtype) and for the fp32 last state
TOLERANCE = {torch.float32: (1e-5, 1e-5), torch.bfloat16: (1e-2, 1e-5), torch.float16: (2e-3, 1e-5)}

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
TINY_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def make_inputs(batch, H, N, L, groups=1, dtype=torch.float32, B_varies=True, C_varies=True,
                initial_state=True, cu_seqlens=None, device=TINY_DEVICE, seed=0):
    """Random inputs (never zeros) with every option on; B/C input-dependent or (H, N)."""
    gen = torch.Generator(device="cpu").manual_seed(seed)

    def rand(*shape, scale=1.0, shift=0.0, dt=dtype):
        return (torch.randn(*shape, generator=gen) * scale + shift).to(device=device, dtype=dt)

    n_states = len(cu_seqlens) - 1 if cu_seqlens else batch
    inputs = dict(
        u=rand(batch, H, L), delta=rand(batch, H, L, scale=0.5, shift=-1.0),
        A=(-torch.rand(H, N, generator=gen) - 0.2).to(device),
        B=rand(batch, groups, N, L) if B_varies else rand(H, N),
        C=rand(batch, groups, N, L) if C_varies else rand(H, N),
        D=rand(H), z=rand(batch, H, L), delta_bias=rand(H, scale=0.3),
        initial_state=rand(n_states, H, N, dt=torch.float32) if initial_state else None,
        delta_softplus=True, return_last_state=True,
    )
    if cu_seqlens:
        inputs["cu_seqlens"] = torch.tensor(cu_seqlens, device=device)
    return inputs




def associative_scan_forward(u, delta, A, B, C, D=None, z=None, delta_bias=None,
                             delta_softplus=False, return_last_state=False, initial_state=None,
                             cu_seqlens=None):
    """The other Triton forward (tl.associative_scan, the training forward for N > 16)."""
    init = initial_state.float() if initial_state is not None else None
    with torch.no_grad():
        y, last, _ = associative_forward(u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                                         return_last_state, init, cu_seqlens)
    return y, last


def check(inputs, dtype, reference=selective_scan_ref, **config):
    with seq_scan_config(**config):
        y, last = selective_scan_seq(**inputs)
    y_ref, last_ref = reference(**inputs)
    out_tol, state_tol = TOLERANCE[dtype]
    assert y.dtype == dtype and y.shape == y_ref.shape and last.shape == last_ref.shape
    assert_close(y, y_ref, out_tol, floor=1e-6)
    assert_close(last, last_ref, state_tol, floor=1e-6)


CPU_CASES = {
    # (make_inputs arguments, launch overrides): chunk_len below L runs all three passes
    "groups_init_several_chunks": (dict(batch=2, H=4, N=4, L=33, groups=2), dict(chunk_len=8)),
    "length1_N1_no_init": (dict(batch=1, H=3, N=1, L=1, initial_state=False), {}),
    "N16_time_invariant_BC": (dict(batch=1, H=4, N=16, L=7, B_varies=False, C_varies=False),
                              dict(chunk_len=4)),
    "per_position_BC_loads": (dict(batch=1, H=2, N=4, L=7), dict(chunk_len=4, bc_tiled=False)),
    "varlen_with_empty_sequence": (
        dict(batch=1, H=3, N=4, L=33, C_varies=False, cu_seqlens=(0, 5, 5, 12, 33)),
        dict(chunk_len=8),
    ),
    "bf16_N16_two_warps": (dict(batch=1, H=2, N=16, L=33, dtype=torch.bfloat16),
                           dict(chunk_len=16, warps=2)),
}


@pytest.mark.parametrize("name", list(CPU_CASES))
def test_seq_scan_matches_sequential_reference(name):
    arguments, config = CPU_CASES[name]
    check(make_inputs(**arguments), arguments.get("dtype", torch.float32), **config)


def test_seq_scan_matches_associative_scan_forward():
    inputs = make_inputs(batch=1, H=2, N=4, L=7)
    with seq_scan_config(chunk_len=4):
        y, last = selective_scan_seq(**inputs)
    y_other, last_other = associative_scan_forward(**inputs)
    assert_close(y, y_other, 1e-5, "y", floor=1e-6)
    assert_close(last, last_other, 1e-5, "last_state", floor=1e-6)


def test_outputs_carry_no_gradient_and_limits_are_checked():
    inputs = make_inputs(batch=1, H=2, N=2, L=5)
    inputs["u"].requires_grad_()
    y, last = selective_scan_seq(**inputs)
    assert not y.requires_grad and not last.requires_grad
    assert not seq_scan_supports(torch.zeros(2, 17), inputs["u"])
    with pytest.raises(ValueError, match="<= 16"):
        selective_scan_seq(**make_inputs(batch=1, H=2, N=17, L=5))
    with pytest.raises(TypeError, match="backend='reference'"):
        selective_scan_seq(**make_inputs(batch=1, H=2, N=2, L=5, dtype=torch.float64))


def test_selective_scan_triton_uses_seq_forward_only_without_gradients():
    inputs = make_inputs(batch=1, H=2, N=4, L=7)
    with torch.no_grad():
        y_inference, _ = selective_scan_triton(**inputs)
    y_seq, _ = selective_scan_seq(**inputs)
    assert torch.equal(y_inference, y_seq) and not y_inference.requires_grad
    inputs["u"].requires_grad_()
    y_train, _ = selective_scan_triton(**inputs)
    assert y_train.requires_grad  # the autograd path: the same forward, saving states
    assert_close(y_train.detach(), y_seq, 1e-5, floor=1e-6)


def test_checked_in_kernels_match_the_generator():
    """recurrent_scan_kernels.py is generated: an edit by hand would be lost at the next generation."""
    assert generate_recurrent_scan_kernels.TARGET.read_text() == generate_recurrent_scan_kernels.generate()


@cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_real_shapes_match_chunked_reference(dtype):
    inputs = make_inputs(batch=2, H=80, N=16, L=4099, groups=2, dtype=dtype, device="cuda")
    check(inputs, dtype, reference=selective_scan_chunked, chunk_len=512)


@cuda
def test_gpu_varlen_matches_reference():
    inputs = make_inputs(batch=1, H=16, N=16, L=3000, cu_seqlens=(0, 1, 1000, 1001, 2500, 3000),
                         device="cuda")
    check(inputs, torch.float32, reference=selective_scan_chunked, chunk_len=256)


@cuda
def test_gpu_length_2_20_matches_associative_scan_forward():
    inputs = make_inputs(batch=1, H=64, N=16, L=1 << 20, dtype=torch.bfloat16, device="cuda")
    y, last = selective_scan_seq(**inputs)
    y_other, last_other = associative_scan_forward(**inputs)
    assert_close(y, y_other, 1e-2, floor=1e-6)
    assert_close(last, last_other, 1e-4, floor=1e-6)
