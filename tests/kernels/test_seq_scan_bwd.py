"""The sequential-time selective-scan backward (recurrent_scan_bwd_kernels.py) against the
sequential reference: every gradient, on the interpreter (CPU) or compiled (GPU)."""

from __future__ import annotations

import pytest
import torch

from genossm.kernels.selective_scan import chunk_scan, selective_scan_ref
from test_chunk_scan import Case, check_against, make_inputs
import generate_seq_scan_bwd_kernels

SEQ_CASES = {
    # every option on; three segments of one chunk each (the carried adjoint and dlast)
    "all_options_segments": (Case(batch=2, H=5, N=3, L=37, groups=1), dict(bwd_segment_chunks=1)),
    "length1_N1_plain": (
        Case(batch=1, H=3, N=1, L=1, groups=1, with_D=False, with_z=False, with_bias=False,
             softplus=False, initial_state=False, last_state=False),
        dict(),
    ),
    "N16_time_invariant_BC_no_softplus": (
        Case(batch=1, H=4, N=16, L=7, groups=1, B_varies=False, C_varies=False, softplus=False,
             with_z=False),
        dict(bwd_segment_chunks=1),
    ),
    "bf16_N16_one_segment": (Case(batch=1, H=2, N=16, L=33, groups=1, dtype=torch.bfloat16), dict()),
    "fp16_odd_length_no_init": (
        Case(batch=1, H=3, N=4, L=45, groups=1, dtype=torch.float16, initial_state=False), dict()),
    # two B/C groups of 32 channels: one program per group; L a multiple of 16 (unmasked loads)
    "groups_of_32_channels_even_length": (
        Case(batch=1, H=64, N=2, L=32, groups=2, with_D=False, initial_state=False),
        dict(bwd_segment_chunks=1),
    ),
    # L a multiple of 16 with every option, segments of one chunk (dlast, carries, dinit)
    "even_length_all_options_segments": (Case(batch=2, H=5, N=3, L=64, groups=1), dict(bwd_segment_chunks=1)),
    # the per-(segment, state) scratch: carries, dA, and time-invariant dB / dC summed through it
    "scratch_segments_odd_length": (
        Case(batch=2, H=5, N=3, L=37, groups=1), dict(bwd_segment_chunks=1)),
    "scratch_time_invariant_BC": (
        Case(batch=1, H=4, N=16, L=7, groups=1, B_varies=False, C_varies=False, softplus=False,
             with_z=False),
        dict(bwd_segment_chunks=1),
    ),
    # H not a multiple of 32, several forward chunks, segments of several chunks
    "H37_L1000_segments": (
        Case(batch=1, H=37, N=2, L=1000, groups=1),
        dict(bwd_segment_chunks=3, recurrent_chunk_len=128),
    ),
}


@pytest.mark.parametrize("name", list(SEQ_CASES))
def test_seq_backward_matches_sequential_reference(name, monkeypatch):
    case, config = SEQ_CASES[name]
    calls = []
    original = chunk_scan._seq_scan_backward
    monkeypatch.setattr(chunk_scan, "_seq_scan_backward",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    tensors, options = make_inputs(case)
    check_against(selective_scan_ref, case, tensors, options, chunk=16, bwd_kernel="seq!", **config)
    assert calls, "the sequential backward did not run"


def test_generated_file_is_current():
    """recurrent_scan_bwd_kernels.py is generated: an edit by hand would be lost."""
    target = generate_seq_scan_bwd_kernels.TARGET
    assert target.read_text() == generate_seq_scan_bwd_kernels.generate()
