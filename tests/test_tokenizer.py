"""Tokenizer: ids, round trips, IUPAC and lowercase, errors, reverse complement on every type."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genossm import tokenizer
from genossm.errors import InputError
from genossm.tokenizer import A, C, G, MASK, N, PAD, T


def test_ids_put_bases_first():
    assert (A, C, G, T, N, MASK, PAD) == tuple(range(7))
    assert tokenizer.VOCAB_SIZE == 7 and tokenizer.NUM_BASES == 4
    assert [tokenizer.VOCAB[i] for i in range(4)] == list("ACGT")


@pytest.mark.parametrize("kind", ["str", "bytes", "bytearray", "numpy"])
def test_round_trip_every_input_type(kind):
    sequence = "ACGTNNACGTTGCA"
    given = {"str": sequence, "bytes": sequence.encode(), "bytearray": bytearray(sequence.encode()),
             "numpy": np.frombuffer(sequence.encode(), dtype=np.uint8)}[kind]
    tokens = tokenizer.encode(given)
    assert tokens.dtype == np.uint8 and tokens.shape == (len(sequence),)
    assert tokenizer.decode(tokens) == sequence


def test_encode_returns_a_writable_array():
    tokens = tokenizer.encode("ACGT")
    tokens[0] = MASK  # masked-LM code edits token arrays in place
    assert tokens.tolist() == [MASK, C, G, T]


def test_lowercase_encodes_like_uppercase():
    assert tokenizer.encode("acgtn").tolist() == tokenizer.encode("ACGTN").tolist() == [A, C, G, T, N]


def test_iupac_codes_and_rna():
    assert set(tokenizer.encode("RYKMSWBDHVrykmswbdhv").tolist()) == {N}
    assert tokenizer.encode("UuACG").tolist() == [T, T, A, C, G]


def test_empty_sequence():
    assert tokenizer.encode("").shape == (0,)
    assert tokenizer.decode(np.zeros(0, dtype=np.uint8)) == ""


@pytest.mark.parametrize("bad,position", [("ACGT-A", 4), ("X", 0), ("ACGTACGT*", 8), ("AC GT", 2)])
def test_invalid_byte_names_position_and_source(bad, position):
    with pytest.raises(InputError) as caught:
        tokenizer.encode(bad, offset=100, source="chr7")
    message = str(caught.value)
    assert f"{bad[position]!r} at position {100 + position} of chr7" in message
    assert "expected A, C, G, T, N" in message


def test_non_ascii_is_an_input_error():
    with pytest.raises(InputError, match="non-ASCII character 'é' at position 2"):
        tokenizer.encode("ACéGT")


def test_fast_encoder_matches_reference_on_every_byte():
    every_byte = np.arange(256, dtype=np.uint8)
    reference = tokenizer.encode_lookup(every_byte)
    fast = tokenizer.encode_translate(every_byte.tobytes())
    np.testing.assert_array_equal(fast, reference)
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, 10_007, dtype=np.uint8)
    np.testing.assert_array_equal(tokenizer.encode_translate(raw), tokenizer.encode_lookup(raw))


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 18])
@pytest.mark.parametrize("kind", ["str", "bytes", "bytearray", "numpy"])
def test_fast_encoder_pieces_join_exactly(monkeypatch, chunk, kind):
    monkeypatch.setattr(tokenizer, "_ENCODE_CHUNK", chunk)
    raw = np.frombuffer(b"ACGTacgtNRYnu", dtype=np.uint8)[np.random.default_rng(1).integers(0, 13, 1001)]
    given = {"str": raw.tobytes().decode(), "bytes": raw.tobytes(), "bytearray": bytearray(raw.tobytes()),
             "numpy": raw}[kind]
    np.testing.assert_array_equal(tokenizer.encode(given), tokenizer.encode_lookup(raw))


def test_errors_point_at_the_right_piece(monkeypatch):
    monkeypatch.setattr(tokenizer, "_ENCODE_CHUNK", 4)
    with pytest.raises(InputError, match="'X' at position 9;"):
        tokenizer.encode("ACGTACGTAXGT")
    with pytest.raises(InputError, match="'é' at position 6 of the sequence"):
        tokenizer.encode("ACGTACéGT")


def test_encode_tensor_is_long():
    tensor = tokenizer.encode_tensor("ACGTN")
    assert tensor.dtype == torch.long and tensor.tolist() == [A, C, G, T, N]


def test_decode_rejects_out_of_range_ids():
    with pytest.raises(ValueError, match="token ids must lie in"):
        tokenizer.decode(np.array([0, 9]))
    assert tokenizer.decode(torch.tensor([MASK, PAD, N])) == "-.N"


def test_reverse_complement_string_keeps_case_and_iupac():
    assert tokenizer.reverse_complement("AACGTn") == "nACGTT"
    assert tokenizer.reverse_complement("RYKMSWBDHV") == "BDHVWSKMRY"
    assert tokenizer.reverse_complement("") == ""


def _random_tokens(shape, seed=0):
    return np.random.default_rng(seed).integers(0, tokenizer.VOCAB_SIZE, shape).astype(np.uint8)


def _reference_reverse_complement(tokens: np.ndarray) -> np.ndarray:
    """Position by position: base b -> 3 - b, specials unchanged, order reversed."""
    complemented = np.where(tokens < tokenizer.NUM_BASES, 3 - tokens.astype(np.int64), tokens)
    return complemented[..., ::-1]


@pytest.mark.parametrize("shape", [(1,), (63,), (3, 17), (2, 3, 5)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", [np.uint8, np.int64])
def test_reverse_complement_tokens_numpy(shape, dtype):
    tokens = _random_tokens(shape).astype(dtype)
    result = tokenizer.reverse_complement_tokens(tokens)
    assert result.dtype == dtype and result.shape == shape
    np.testing.assert_array_equal(result, _reference_reverse_complement(tokens))
    np.testing.assert_array_equal(tokenizer.reverse_complement_tokens(result), tokens)  # involution


@pytest.mark.parametrize("dtype", [torch.long, torch.uint8, torch.int32])
def test_reverse_complement_tokens_torch(dtype):
    tokens = _random_tokens((4, 33), seed=1)
    tensor = torch.from_numpy(tokens.astype(np.int64)).to(dtype)
    result = tokenizer.reverse_complement_tokens(tensor)
    assert isinstance(result, torch.Tensor) and result.dtype == dtype
    np.testing.assert_array_equal(result.long().numpy(), _reference_reverse_complement(tokens))
    assert torch.equal(tokenizer.reverse_complement_tokens(result), tensor)


def test_reverse_complement_agrees_between_strings_and_tokens():
    sequence = "ACGTTGCANNAGGCTA"
    from_string = tokenizer.encode(tokenizer.reverse_complement(sequence))
    from_tokens = tokenizer.reverse_complement_tokens(tokenizer.encode(sequence))
    np.testing.assert_array_equal(from_string, from_tokens)


def test_benchmark_script_runs_its_correctness_gate(tmp_path, capsys, monkeypatch):
    import json
    import runpy
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "tokenizer.py"
    monkeypatch.syspath_prepend(str(script.parent))  # as `python benchmarks/tokenizer.py` would
    benchmark = runpy.run_path(str(script))
    out = tmp_path / "tokenizer.json"
    benchmark["main"](["--megabases", "0.02", "--torch-megabases", "0.01", "--repeats", "1", "--out", str(out)])
    report = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == report
    assert report["results"]["encode_str"]["bases"] == 20_000
    assert report["results"]["reverse_complement_tokens_torch_long"]["bases"] == 10_000
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["numpy"] == np.__version__
