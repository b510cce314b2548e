"""Region embeddings: chunked == one pass, strands, HDF5 layout, resume, merge, CLI."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from genossm.cli.main import main
from genossm.infer.embed import embedder
from genossm.infer.embed.embedder import EmbedSettings, embed_tokens
from genossm.infer.embed.job import run_embed
from genossm.infer.embed.store import partial_path
from genossm.io.fasta import open_fasta
from genossm.io.intervals import Region
from genossm.tokenizer import encode, reverse_complement
from infer_helpers import LAMBDA, LAMBDA_CONTIG, lambda_sequence, save_tiny_model, tiny_model


@pytest.fixture(scope="module")
def hyena_dir(tmp_path_factory):
    return save_tiny_model("hyena", tmp_path_factory.mktemp("models") / "hyena")


@pytest.mark.parametrize("kind", ["hyena", "mamba", "masked"])
def test_chunked_embedding_equals_one_pass(kind):
    model = tiny_model(kind)
    tokens = encode(lambda_sequence()[1000:1133])  # 133 bases: chunks of 48 leave a ragged tail
    one_pass = embed_tokens(model, tokens, EmbedSettings(max_pass_length=10_000), "cpu")
    chunked = embed_tokens(model, tokens, EmbedSettings(max_pass_length=48), "cpu")
    torch.testing.assert_close(chunked, one_pass, atol=2e-5, rtol=1e-4)


def test_both_strands_is_the_mean_of_forward_and_flipped_reverse():
    model = tiny_model("hyena")
    sequence = lambda_sequence()[:100]
    forward = embed_tokens(model, encode(sequence), EmbedSettings(both_strands=False), "cpu")
    reverse = embed_tokens(model, encode(reverse_complement(sequence)), EmbedSettings(both_strands=False), "cpu")
    both = embed_tokens(model, encode(sequence), EmbedSettings(), "cpu")
    torch.testing.assert_close(both, (forward + reverse.flip(0)) / 2)


def test_minus_strand_region_embeds_the_reverse_complement(tmp_path):
    model = tiny_model("hyena")
    plus = Region(LAMBDA_CONTIG, 500, 600, name="plus")
    minus = Region(LAMBDA_CONTIG, 500, 600, name="minus", strand="-")
    out = tmp_path / "e.h5"
    with open_fasta(LAMBDA) as genome:
        run_embed([plus, minus], genome, model, EmbedSettings(both_strands=False, per_position=True), out)
    sequence = lambda_sequence()[500:600]
    expected = embed_tokens(model, encode(reverse_complement(sequence)), EmbedSettings(both_strands=False), "cpu")
    with h5py.File(out, "r") as store:
        np.testing.assert_allclose(store["per_position/1"][()], expected.numpy(), atol=1e-6)
        np.testing.assert_allclose(store["embeddings"][1], expected.numpy().mean(0), atol=1e-6)
        assert list(store["regions/strand"].asstr()[()]) == ["+", "-"]


def test_cli_layout(tmp_path, hyena_dir):
    bed = tmp_path / "r.bed"
    bed.write_text(f"{LAMBDA_CONTIG}\t100\t200\tfirst\t0\t+\n{LAMBDA_CONTIG}\t1000\t1150\tsecond\t0\t-\n")
    out = tmp_path / "e.h5"
    code = main(["-q", "embed", "--regions", str(bed), f"{LAMBDA_CONTIG}:5001-5050",
                 "--fasta", str(LAMBDA), "--model", str(hyena_dir), "-o", str(out), "--per-position"])
    assert code == 0
    with h5py.File(out, "r") as store:
        assert store["embeddings"].shape == (3, 16) and store["embeddings"].dtype == np.float32
        assert [store[f"per_position/{i}"].shape for i in range(3)] == [(100, 16), (150, 16), (50, 16)]
        assert list(store["regions/name"].asstr()[()]) == ["first", "second", f"{LAMBDA_CONTIG}:5001-5050"]
        assert list(store["regions/start"][()]) == [100, 1000, 5000]
        assert list(store["regions/end"][()]) == [200, 1150, 5050]
        for row in range(3):
            np.testing.assert_allclose(store["embeddings"][row], store[f"per_position/{row}"][()].mean(0), atol=1e-6)
        assert store.attrs["pooling"] == "mean" and store.attrs["strands"] == "forward,reverse"
        assert len(store.attrs["model_sha256"]) == 64 and store.attrs["command"].startswith("genossm embed")
    assert not partial_path(out).exists()


def test_resume_gives_identical_file(tmp_path, monkeypatch):
    model = tiny_model("hyena")
    regions = [Region(LAMBDA_CONTIG, start, start + 50) for start in range(0, 600, 100)]
    settings = EmbedSettings(per_position=True)
    with open_fasta(LAMBDA) as genome:
        run_embed(regions, genome, model, settings, tmp_path / "full.h5")
        original = embedder.embed_tokens
        calls = {"n": 0}

        def crash_after_three(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] > 3:
                raise RuntimeError("simulated kill")
            return original(*args, **kwargs)

        monkeypatch.setattr(embedder, "embed_tokens", crash_after_three)
        with pytest.raises(RuntimeError, match="simulated kill"):
            run_embed(regions, genome, model, settings, tmp_path / "resumed.h5")
        assert not (tmp_path / "resumed.h5").exists()
        assert partial_path(tmp_path / "resumed.h5").exists()
        calls["n"] = -100
        computed = run_embed(regions, genome, model, settings, tmp_path / "resumed.h5", resume=True)
    assert computed == 3 and calls["n"] == -97
    assert (tmp_path / "resumed.h5").read_bytes() == (tmp_path / "full.h5").read_bytes()
    assert not partial_path(tmp_path / "resumed.h5").exists()


def test_merge_concatenates_in_order(tmp_path):
    model = tiny_model("hyena")
    regions = [Region(LAMBDA_CONTIG, start, start + 40) for start in range(0, 120, 40)]
    with open_fasta(LAMBDA) as genome:
        run_embed(regions, genome, model, EmbedSettings(), tmp_path / "all.h5")
        run_embed(regions[:1], genome, model, EmbedSettings(), tmp_path / "a.h5")
        run_embed(regions[1:], genome, model, EmbedSettings(), tmp_path / "b.h5")
    assert main(["embed", "--merge", str(tmp_path / "a.h5"), str(tmp_path / "b.h5"), "-o", str(tmp_path / "m.h5")]) == 0
    with h5py.File(tmp_path / "m.h5", "r") as merged, h5py.File(tmp_path / "all.h5", "r") as whole:
        np.testing.assert_array_equal(merged["embeddings"][()], whole["embeddings"][()])
        assert list(merged["regions/start"][()]) == list(whole["regions/start"][()])


def test_region_past_contig_end_is_an_input_error(tmp_path, hyena_dir, capsys):
    code = main(["embed", "--regions", f"{LAMBDA_CONTIG}:48000-49000", "--fasta", str(LAMBDA),
                 "--model", str(hyena_dir), "-o", str(tmp_path / "e.h5")])
    assert code == 1 and "past the end" in capsys.readouterr().err
