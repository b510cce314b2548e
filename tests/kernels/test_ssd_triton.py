"""Triton chunked SSD against the sequential recurrence: outputs, final states, every gradient.

On CPU the kernels run under TRITON_INTERPRET=1 (set by conftest.py) on tiny shapes: odd
lengths, L = 1, chunk boundaries, several heads and groups, packed sequences with an empty one,
initial and final states, fp32 / bf16 / fp16. The `cuda` tests repeat the checks at real shapes
(against the chunked PyTorch reference), including offsets past 2^31; each has a CPU twin here.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from genossm.kernels import ssd, ssd_chunked, ssd_ref
from genossm.kernels.ssd.chunk_ssd import _Launch, chunk_table, ssd_config, ssd_triton
from tensor_checks import assert_close, relative_error

# relative L2 error allowed, by input dtype: (outputs and states, gradients)
TOLERANCE = {torch.float32: (1e-5, 1e-4), torch.bfloat16: (2e-2, 3e-2), torch.float16: (3e-3, 5e-3)}
GRAD_NAMES = ("x", "dt", "A", "B", "C", "D", "z", "dt_bias", "initial_states")

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
# the tiny cases run in the interpreter on CPU (CI), compiled on a GPU where there is one
TINY_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@dataclasses.dataclass
class Case:
    L: int = 37
    batch: int = 2
    H: int = 4
    P: int = 5
    G: int = 2
    N: int = 3
    dtype: torch.dtype = torch.float32
    D_shape: str | None = "H"  # "H", "HP" or None
    with_z: bool = False
    with_bias: bool = True
    softplus: bool = True
    initial: bool = True
    final: bool = True
    cu_seqlens: tuple[int, ...] | None = None
    chunk_size: int = 16
    config: dict = dataclasses.field(default_factory=dict)  # SSDConfig overrides


def make_inputs(case: Case, device=TINY_DEVICE, seed=0):
    """Leaf tensors (gradients on) in the public argument order, and the keyword options."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0, shift=0.0, dtype=case.dtype):
        t = torch.randn(*shape, generator=gen) * scale + shift
        return t.to(device=device, dtype=dtype).requires_grad_()

    b, L, H, P, G, N = case.batch, case.L, case.H, case.P, case.G, case.N
    sequences = b if case.cu_seqlens is None else len(case.cu_seqlens) - 1
    tensors = dict(
        x=rand(b, L, H, P),
        dt=rand(b, L, H, scale=0.5, shift=-1.0),
        A=(-torch.rand(H, generator=gen) * 2 - 0.1).to(device).requires_grad_(),  # fp32, as the model
        B=rand(b, L, G, N, scale=0.5),
        C=rand(b, L, G, N, scale=0.5),
        D=None if case.D_shape is None else rand(*((H,) if case.D_shape == "H" else (H, P)), dtype=torch.float32),
        z=rand(b, L, H, P) if case.with_z else None,
        dt_bias=rand(H, scale=0.3, dtype=torch.float32) if case.with_bias else None,
        initial_states=rand(sequences, H, P, N, dtype=torch.float32) if case.initial else None,
    )
    options = dict(dt_softplus=case.softplus, return_final_states=case.final)
    if case.cu_seqlens is not None:
        options["cu_seqlens"] = torch.tensor(case.cu_seqlens, device=device)
    return tensors, options


def run_and_grad(implementation, tensors, options, seed=1):
    """Outputs, and the gradients of a random projection of them for every tensor input."""
    result = implementation(**tensors, **options)
    outputs = result if isinstance(result, tuple) else (result,)
    gen = torch.Generator().manual_seed(seed)
    weights = [torch.randn(o.shape, generator=gen).to(o.device) for o in outputs]
    loss = sum((o.float() * w).sum() for o, w in zip(outputs, weights))
    leaves = {k: v for k, v in tensors.items() if v is not None}
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return outputs, dict(zip(leaves, grads))


def check_against(reference, case: Case, tensors, options, scale=(1.0, 1.0)):
    out_tol, grad_tol = (t * s for t, s in zip(TOLERANCE[case.dtype], scale))

    def triton_path(**kwargs):
        return ssd_triton(**kwargs, chunk_size=case.chunk_size)

    with ssd_config(**case.config):
        outputs, grads = run_and_grad(triton_path, tensors, options)
    expected_outputs, expected_grads = run_and_grad(reference, tensors, options)
    assert outputs[0].dtype == case.dtype
    for name, got, want in zip(("y", "final_states"), outputs, expected_outputs):
        assert_close(got, want, out_tol, name, floor=1e-4)
    for name, want in expected_grads.items():
        assert grads[name].shape == want.shape and grads[name].dtype == want.dtype, name
        err = relative_error(grads[name], want, floor=1e-4)
        assert err < grad_tol, f"d{name}: relative error {err:.2e} >= {grad_tol:.1e}"


CPU_CASES = {
    # odd L over three chunks of 16, two groups of two heads, every option; the forward runs
    # two chunks of 32 read in sub-blocks of 16 (it keeps no states: the backward recomputes
    # them in chunks of 16)
    "odd_length_groups_all_options": Case(with_z=True, config=dict(forward_chunk=32,
                                                                     save_states=False)),
    # 19 chunks: the walks carry states and adjoints from one tile of 16 chunks to the next,
    # in blocks of 16 of the 5 x 7 state entries
    "walks_across_tiles": Case(L=300, batch=1, H=2, P=5, N=7, G=1,
                               config=dict(passing_chunks=16, passing_block=16)),
    "length1_plain": Case(L=1, batch=1, H=3, G=1, D_shape=None, with_bias=False, softplus=False,
                          initial=False),
    # two whole chunks (the boundary falls on a chunk edge), D per channel, no initial state
    # (the forward in the caller's chunks too)
    "chunk_boundary_D_per_channel": Case(L=32, batch=1, H=2, G=1, P=16, N=16, D_shape="HP",
                                         initial=False, config=dict(forward_chunk=None)),
    "packed_with_empty_sequence": Case(L=34, batch=1, H=3, G=1, cu_seqlens=(0, 5, 5, 21, 33, 34),
                                       config=dict(forward_chunk=None)),
    # 21 chunks in walk tiles of 16: sequences start and end inside tiles and across them;
    # forward chunks of 32 that sequences end inside of
    "packed_across_tiles": Case(L=300, batch=1, H=2, G=1, D_shape="HP",
                                cu_seqlens=(0, 100, 100, 250, 300),
                                config=dict(passing_chunks=16, forward_chunk=32,
                                            save_states=False)),
    # packed, no initial states and no d final states (final states not returned); the
    # backward recomputes the states instead of keeping the forward's
    "packed_no_states": Case(L=50, batch=1, H=2, G=1, cu_seqlens=(0, 17, 50), initial=False,
                             final=False, config=dict(forward_chunk=None, save_states=False)),
    "chunk32_three_groups": Case(L=45, batch=1, H=6, G=3, chunk_size=32, final=False),
    "bf16": Case(L=33, batch=1, H=2, G=1, P=16, N=16, dtype=torch.bfloat16,
                 config=dict(forward_chunk=32, save_states=False)),
    "fp16": Case(L=20, batch=1, H=2, G=2, dtype=torch.float16),
}


@pytest.mark.parametrize("name", list(CPU_CASES))
def test_triton_ssd_matches_sequential_reference(name):
    case = CPU_CASES[name]
    tensors, options = make_inputs(case)
    check_against(ssd_ref, case, tensors, options)


def test_chunk_table_of_packed_sequences_by_hand():
    """Sequences of 3, 0, 20 and 1 positions in chunks of 16: each starts a chunk, the empty one
    has none."""
    table = chunk_table(1, 24, 16, torch.tensor([0, 3, 3, 23, 24]), "cpu")
    assert table.start.tolist() == [0, 3, 19, 23]
    assert table.length.tolist() == [3, 16, 4, 1]
    assert table.first.tolist() == [1, 1, 0, 1] and table.last.tolist() == [1, 0, 1, 1]
    assert table.sequence.tolist() == [0, 2, 2, 3]
    assert table.empty.tolist() == [False, True, False, False]
    assert (table.rows, table.sequences) == (1, 4)
    rows = chunk_table(3, 40, 16, None, "cpu")
    assert rows.start.tolist() == [0, 16, 32] and rows.length.tolist() == [16, 16, 8]
    assert rows.first.tolist() == [1, 0, 0] and rows.last.tolist() == [0, 0, 1] and rows.rows == 3


def test_launch_grids_cover_every_chunk_and_state_entry():
    """Chunk kernels: one program per chunk and (row, head) or (row, group); passing: one per
    block of state entries and (row, head), kappa's parts one per block."""
    x, B = torch.empty(3, 100, 4, 5), torch.empty(3, 100, 2, 7)
    with ssd_config(passing_block=16) as config:
        run = _Launch(x, B, chunk_table(3, 100, 16, None, "cpu"), 16, config)
    assert run.head_grid == (7, 12) and run.chunk_grid == (7, 6)
    assert run.entry_blocks == 3 and run.passing_grid == (3, 12)  # 35 entries in blocks of 16
    assert run.chunk_states("cpu").shape == (3, 7, 4, 5, 7)


def test_dispatch_forced_triton_equals_ssd_triton_and_auto_on_cpu_is_the_reference():
    case = Case(L=17, batch=1, H=2, G=1)
    tensors, options = make_inputs(case, device=TINY_DEVICE)
    forced = ssd(**tensors, **options, backend="triton", chunk_size=16)
    direct = ssd_triton(**tensors, **options, chunk_size=16)
    assert torch.equal(forced[0], direct[0]) and torch.equal(forced[1], direct[1])
    tensors, options = make_inputs(case, device="cpu")  # CPU tensors: "auto" picks the reference
    auto = ssd(**tensors, **options, chunk_size=16)
    chunked = ssd_chunked(**tensors, **options, chunk_size=16)
    assert torch.equal(auto[0], chunked[0])


def test_config_chunk_size_overrides_the_argument():
    case = Case(L=40, batch=1, H=2, G=1)
    tensors, options = make_inputs(case, device=TINY_DEVICE)
    with ssd_config(chunk_size=32):
        y32, _ = ssd_triton(**tensors, **options, chunk_size=16)
    y16, _ = ssd_triton(**tensors, **options, chunk_size=16)
    assert_close(y32, y16, 1e-5)  # same numbers, another chunking
    assert not torch.equal(y32, y16)  # ...rounded differently: the override took effect


def test_length_zero_returns_initial_states():
    tensors, options = make_inputs(Case(L=0, batch=1, H=2, G=1, cu_seqlens=(0, 0, 0)), device=TINY_DEVICE)
    y, final = ssd_triton(**tensors, **options)
    assert y.shape == (1, 0, 2, 5)
    assert torch.equal(final, tensors["initial_states"].detach())


def test_chunk_size_is_rounded_up_to_a_power_of_two_of_at_least_16():
    tensors, options = make_inputs(Case(L=40, batch=1, H=2, G=1), device=TINY_DEVICE)
    y16, _ = ssd_triton(**tensors, **options, chunk_size=16)
    for odd_size in (1, 8, 11):
        assert torch.equal(ssd_triton(**tensors, **options, chunk_size=odd_size)[0], y16)
    assert torch.equal(ssd_triton(**tensors, **options, chunk_size=24)[0],
                       ssd_triton(**tensors, **options, chunk_size=32)[0])
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        ssd_triton(**tensors, **options, chunk_size=0)


def test_kept_forward_states_give_the_recomputed_gradients():
    """The backward from the forward's kept states and from recomputed ones: the same kernels
    on the same inputs, so the same bits."""
    case = Case(L=40, batch=1, H=2, G=1, cu_seqlens=(0, 9, 40))
    tensors, options = make_inputs(case, device=TINY_DEVICE)
    path = lambda **kw: ssd_triton(**kw, chunk_size=16)  # noqa: E731
    with ssd_config(save_states=True):
        _, kept = run_and_grad(path, tensors, options)
    with ssd_config(save_states=False):
        _, recomputed = run_and_grad(path, tensors, options)
    for name, grad in kept.items():
        assert torch.equal(grad, recomputed[name]), name


def test_forward_chunks_are_never_shorter_than_the_callers():
    """Without a backward to follow, the forward runs `forward_chunk` (read in the caller's
    tiles), never shorter chunks than the caller's."""
    tensors, options = make_inputs(Case(L=70, batch=1, H=2, G=1), device=TINY_DEVICE)
    with torch.no_grad():
        with ssd_config(forward_chunk=16):
            shorter = ssd_triton(**tensors, **options, chunk_size=32)
        with ssd_config(forward_chunk=None):
            callers = ssd_triton(**tensors, **options, chunk_size=32)
        with ssd_config(forward_chunk=64):
            longer = ssd_triton(**tensors, **options, chunk_size=32)
    assert torch.equal(shorter[0], callers[0]) and torch.equal(shorter[1], callers[1])
    assert not torch.equal(longer[0], callers[0])  # two sub-blocks per chunk: other roundings
    assert_close(longer[0], callers[0], 1e-5)


def test_16_bit_long_forward_chunks_run_as_one_tile_and_match_the_reference():
    """bf16 without a backward: chunks of `forward_chunk` up to `whole_tile_chunk` are one tile
    (the H200's faster forward), longer ones tiles of the caller's chunk; both match the
    chunked reference."""
    case = Case(L=70, batch=1, H=2, G=1, P=16, N=16, dtype=torch.bfloat16)
    tensors, options = make_inputs(case, device=TINY_DEVICE)
    with torch.no_grad():
        want = ssd_chunked(**tensors, **options, chunk_size=16)
        with ssd_config(forward_chunk=64):
            one_tile = ssd_triton(**tensors, **options, chunk_size=16)
        with ssd_config(forward_chunk=64, whole_tile_chunk=32):
            tiled = ssd_triton(**tensors, **options, chunk_size=16)
    assert not torch.equal(one_tile[0], tiled[0])  # another tiling: other roundings
    for got in (one_tile, tiled):
        assert_close(got[0], want[0], TOLERANCE[torch.bfloat16][0], "y")
        assert_close(got[1], want[1], TOLERANCE[torch.bfloat16][0], "final_states")


def test_a_forward_under_autograd_runs_the_callers_chunks_and_keeps_its_states():
    """The same call with gradients on: the caller's chunks whatever `forward_chunk` says (the
    states are kept for the backward), unless the states are not kept."""
    tensors, options = make_inputs(Case(L=70, batch=1, H=2, G=1), device=TINY_DEVICE)
    with torch.no_grad(), ssd_config(forward_chunk=None):
        callers = ssd_triton(**tensors, **options, chunk_size=32)[0]
    with ssd_config(forward_chunk=64):
        kept = ssd_triton(**tensors, **options, chunk_size=32)[0]
        with ssd_config(forward_chunk=64, save_states=False):
            recomputed = ssd_triton(**tensors, **options, chunk_size=32)[0]
    assert torch.equal(kept.detach(), callers)
    assert not torch.equal(recomputed.detach(), callers)


def test_mixed_dtypes_fail_before_any_kernel():
    tensors, options = make_inputs(Case(L=5, batch=1, H=2, G=1), device=TINY_DEVICE)
    tensors["B"] = tensors["B"].detach().to(torch.float16)
    with pytest.raises(TypeError, match="B and C must have x's dtype"):
        ssd_triton(**tensors, **options)


def zero_prefix_inputs(L, tail, H, P, G, N, dtype, device, seed=0):
    """Inputs whose x is zero before the last `tail` positions: the state there is exactly zero,
    so the tail's outputs and gradients equal a call on the tail alone (a check at lengths where
    no reference fits in memory)."""
    gen = torch.Generator(device=device).manual_seed(seed)

    def rand(*shape, scale=1.0, shift=0.0):
        return (torch.randn(*shape, device=device, generator=gen) * scale + shift).to(dtype)

    x = torch.zeros(1, L, H, P, device=device, dtype=dtype)
    x[:, L - tail:] = rand(1, tail, H, P)
    dt = torch.full((1, L, H), -1.0, device=device, dtype=dtype)
    dt[:, L - tail:] = rand(1, tail, H, scale=0.5, shift=-1.0)
    B = torch.zeros(1, L, G, N, device=device, dtype=dtype)
    C = torch.zeros(1, L, G, N, device=device, dtype=dtype)
    B[:, L - tail:], C[:, L - tail:] = rand(1, tail, G, N, scale=0.5), rand(1, tail, G, N, scale=0.5)
    A = -torch.rand(H, device=device, generator=gen) - 0.1
    D, bias = torch.randn(H, device=device, generator=gen), torch.randn(H, device=device, generator=gen)
    return x, dt, A, B, C, D, bias


def check_zero_prefix(L, tail, H, P, G, N, dtype, device, chunk_size, tolerance):
    x, dt, A, B, C, D, bias = zero_prefix_inputs(L, tail, H, P, G, N, dtype, device)
    leaves = [x.requires_grad_(), B.requires_grad_(), C.requires_grad_()]
    y, final = ssd_triton(x, dt, A, B, C, D, None, bias, True, None, True, chunk_size=chunk_size)
    grad_y = torch.randn_like(y[:, L - tail:])
    dx, dB, dC = torch.autograd.grad((y[:, L - tail:].float() * grad_y).sum(), leaves)
    head = slice(0, L - tail)
    assert not y[:, head].any() and not dx[:, head].any() and not dB[:, head].any()
    tail_inputs = [t[:, L - tail:].detach().requires_grad_() for t in (x, B, C)]
    y_tail, final_tail = ssd_chunked(tail_inputs[0], dt[:, L - tail:], A, tail_inputs[1], tail_inputs[2],
                                     D, None, bias, True, None, True, chunk_size=chunk_size)
    expected = torch.autograd.grad((y_tail.float() * grad_y).sum(), tail_inputs)
    assert_close(y[:, L - tail:], y_tail, tolerance, "y")
    assert_close(final, final_tail, tolerance, "final_states")
    for name, got, want in zip(("dx", "dB", "dC"), (dx, dB, dC), expected):
        assert_close(got[:, L - tail:], want, 2 * tolerance, name)


def test_zero_prefix_tail_equals_a_call_on_the_tail():
    """CPU twin of the offsets-past-2^31 GPU test: the same check at a tiny length."""
    check_zero_prefix(L=70, tail=20, H=2, P=16, G=1, N=16, dtype=torch.float32, device=TINY_DEVICE,
                      chunk_size=16, tolerance=1e-5)


def test_varlen_equals_separate_calls():
    """CPU twin of the GPU varlen test: packed sequences give what separate calls give."""
    case = Case(L=40, batch=1, H=2, G=1, cu_seqlens=(0, 17, 17, 40))
    tensors, options = make_inputs(case, device=TINY_DEVICE)
    y, final = ssd_triton(**tensors, **options)
    for index, (start, end) in enumerate([(0, 17), (17, 17), (17, 40)]):
        piece = {k: (v[:, start:end] if k in ("x", "dt", "B", "C") else v) for k, v in tensors.items()}
        piece["initial_states"] = tensors["initial_states"][index:index + 1]
        y_piece, final_piece = ssd_triton(**piece, dt_softplus=True, return_final_states=True)
        if end > start:
            assert_close(y[:, start:end], y_piece, 1e-6, "y")
        assert_close(final[index:index + 1], final_piece, 1e-6, "final")


def chunked_reference_64(**kwargs):
    """The PyTorch chunked SSD at the kernels' chunk size, the reference of the GPU-shape tests."""
    return ssd_chunked(**kwargs, chunk_size=64)


@cuda
@pytest.mark.parametrize("dtype, forward_chunk", [
    (torch.bfloat16, None), (torch.bfloat16, 256), (torch.float32, None), (torch.float32, 128),
], ids=["bf16", "bf16_forward256", "fp32", "fp32_forward128"])
def test_gpu_real_shape_matches_chunked_reference(dtype, forward_chunk):
    """(1, 2^14, 8 heads x 64, N = 128), the kernel target's head shape, forward and backward;
    the forward in the caller's chunks (states kept) and in longer ones read in sub-blocks
    (states recomputed by the backward)."""
    case = Case(L=(1 << 14) + 3, batch=1, H=8, P=64, G=1, N=128, dtype=dtype, chunk_size=64,
                config=dict(forward_chunk=forward_chunk, save_states=forward_chunk is None))
    tensors, options = make_inputs(case, device="cuda")
    check_against(chunked_reference_64, case, tensors, options)


@cuda
@pytest.mark.parametrize("forward_chunk", [None, 128])
def test_gpu_varlen_matches_reference(forward_chunk):
    case = Case(L=3000, batch=1, H=4, P=64, G=2, N=64, dtype=torch.bfloat16, chunk_size=64,
                cu_seqlens=(0, 1, 700, 700, 1999, 3000),
                config=dict(forward_chunk=forward_chunk, save_states=forward_chunk is None))
    tensors, options = make_inputs(case, device="cuda")
    check_against(chunked_reference_64, case, tensors, options)


@cuda
def test_gpu_offsets_past_2_31_are_correct():
    """x has 8 * 64 * 2^22 = 2^31 elements (+ the tail): int32 offsets would wrap."""
    check_zero_prefix(L=(1 << 22) + 512, tail=512, H=8, P=64, G=1, N=128, dtype=torch.bfloat16,
                      device="cuda", chunk_size=64, tolerance=2e-2)
