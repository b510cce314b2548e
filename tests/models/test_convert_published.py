"""Published HyenaDNA / Caduceus checkpoints -> genossm: exact logits and hidden states on the
peers' own goldens (tests/fixtures/published), the peers' tokenizers, the inference view the
commands run, provenance, refusals, and every published size on small random-weight copies."""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from tensor_checks import relative_error

from genossm.cli.main import main as cli_main
from genossm.errors import InputError
from genossm.models.checkpoint import describe_checkpoint, load_model, sha256_file
from genossm.models.lm import build_model
from genossm.models.published import PEER_VOCAB, caduceus_config, convert_published, hyenadna_config
from genossm.models.vocab import VocabularyView, inference_view
from genossm.tokenizer import MASK, Vocabulary

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "published"
TOLERANCE = 1e-5  # relative L2 error, float32 on CPU (the target)

# (id, folder under GOLDEN, files to copy (None: use the folder as is), golden of the logits)
CASES = [
    ("hyenadna-hf-safetensors", "hyenadna", ["config.json", "model.safetensors"], "hyenadna/logits.npy"),
    ("hyenadna-hf-bin", "hyenadna", ["config.json", "pytorch_model.bin"], "hyenadna/logits.npy"),
    ("hyenadna-lightning", "hyenadna/lightning", None, "hyenadna/lightning/logits_tied_head.npy"),
    ("caduceus-ph", "caduceus_ph", None, "caduceus_ph/logits.npy"),
    ("caduceus-ps", "caduceus_ps", None, "caduceus_ps/logits.npy"),
]


def golden_folder(folder: str) -> Path:
    return GOLDEN / folder.split("/")[0]


def source_dir(tmp_path: Path, folder: str, files) -> Path:
    if files is None:
        return GOLDEN / folder
    target = tmp_path / "source"
    target.mkdir()
    for name in files:
        shutil.copy(GOLDEN / folder / name, target / name)
    return target


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Every golden converted once: {case id: checkpoint directory}."""
    out = {}
    for case, folder, files, _ in CASES:
        base = tmp_path_factory.mktemp(case)
        out[case] = convert_published(source_dir(base, folder, files), base / "model")
    return out


def block_outputs(model, ids: torch.Tensor):
    """Embedding output, (input, output) of every block, final-norm output."""
    seen = []
    hooks = [block.register_forward_hook(lambda module, args, out: seen.append((args[0], out)))
             for block in model.blocks]
    try:
        with torch.no_grad():
            embedded = model.embedding(ids)
            final = model.backbone(ids)
    finally:
        for hook in hooks:
            hook.remove()
    return embedded, seen, final


@pytest.mark.parametrize("case, folder, files, logits_file", CASES, ids=[c[0] for c in CASES])
def test_golden_logits_and_hidden_states(converted, case, folder, files, logits_file):
    golden = golden_folder(folder)
    model = load_model(converted[case])
    ids = torch.from_numpy(np.load(golden / "input_ids.npy"))
    with torch.no_grad():
        logits = model(ids)
    assert relative_error(logits, torch.from_numpy(np.load(GOLDEN / logits_file))) <= TOLERANCE
    embedded, blocks, final = block_outputs(model, ids)
    assert relative_error(final, torch.from_numpy(np.load(golden / "last_hidden_state.npy"))) <= TOLERANCE
    expected = torch.from_numpy(np.load(golden / "hidden_states_all.npy"))
    if case.startswith("hyenadna"):
        # HF port: embeddings, every block's output (the residual stream), ln_f's output.
        ours = [embedded] + [out for _, out in blocks] + [final]
    else:
        # Caduceus: embeddings, then what each layer hands the next besides the residual (its
        # mixer output), the last layer's folded into the final norm's output.
        ours = [embedded] + [out - inp for inp, out in blocks[:-1]] + [final]
    assert len(ours) == len(expected)
    for index, (actual, reference) in enumerate(zip(ours, expected)):
        error = relative_error(actual, reference)
        assert error <= TOLERANCE, f"hidden state {index}: relative error {error:.3g}"


@pytest.mark.parametrize("folder", ["hyenadna", "caduceus_ph", "caduceus_ps"])
def test_peer_tokenizer_ids(converted, folder):
    """The converted model's vocabulary encodes the golden's sequence into its input_ids ([SEP]
    appended), and config.json lists the vocabulary in id order."""
    case = {"hyenadna": "hyenadna-hf-safetensors", "caduceus_ph": "caduceus-ph", "caduceus_ps": "caduceus-ps"}[folder]
    model = load_model(converted[case])
    vocabulary = model.config.tokenizer.vocabulary()
    sequence = (GOLDEN / folder / "sequence.txt").read_text().strip()
    np.testing.assert_array_equal(vocabulary.encode(sequence), np.load(GOLDEN / folder / "input_ids.npy")[0])
    np.testing.assert_array_equal(vocabulary.encode(sequence.lower(), specials=False), vocabulary.encode(sequence)[:-1])
    record = json.loads((converted[case] / "config.json").read_text())
    assert record["tokenizer"]["vocab"] == PEER_VOCAB
    assert record["tokenizer"]["append"] == ["[SEP]"]
    assert vocabulary.encode("ACGTNRX?")[5:].tolist() == [6, 6, 6, 1]  # any other character: [UNK]


def test_inference_view_runs_genossm_ids_as_the_peer_tokenizer(converted):
    """Masked model: the view appends [SEP], drops its outputs and returns logits in genossm's
    order; its RC average is symmetric."""
    model = load_model(converted["caduceus-ps"])
    view = inference_view(model)
    assert isinstance(view, VocabularyView) and view.config.vocab_size == 7
    tokens = torch.tensor([[0, 1, 2, 3, 4, 2, 2, 1, MASK, 0, 3]])
    peer = torch.tensor([[7, 8, 9, 10, 11, 9, 9, 8, 3, 7, 10, 1]])  # ..., [SEP]
    with torch.no_grad():
        logits, hidden = view(tokens, return_embeddings=True)
        peer_logits, peer_hidden = model(peer, return_embeddings=True)
    columns = [7, 8, 9, 10, 11, 3, 4]
    torch.testing.assert_close(logits, peer_logits[:, :-1][..., columns])
    torch.testing.assert_close(hidden, peer_hidden[:, :-1])
    with torch.no_grad():
        chunked = view.forward_chunked(tokens, 4)
    torch.testing.assert_close(chunked, logits, rtol=1e-5, atol=1e-6)
    # The default-vocabulary model is its own view.
    plain = build_model(model.config.__class__(arch="hyena", d_model=8, n_layers=1, hyena={"filter_order": 8}))
    assert inference_view(plain) is plain


def test_inference_view_keeps_causal_fast_paths(converted):
    """Causal HyenaDNA: nothing appended, and suffix reuse gives the full pass's numbers."""
    view = inference_view(load_model(converted["hyenadna-hf-safetensors"]))
    assert view.supports_suffix_cache and len(view.appended) == 0
    torch.manual_seed(0)
    reference = torch.randint(0, 4, (1, 40))
    other = reference.clone()
    other[0, 25:] = torch.randint(0, 4, (15,))
    with torch.no_grad():
        _, _, cache = view.prefix_cache(reference)
        suffix_logits, _ = view.forward_suffix(cache, other[:, 25:], [25])
        full = view(other)
    torch.testing.assert_close(suffix_logits, full[:, 25:], rtol=1e-4, atol=1e-5)


def test_provenance_in_info(converted, capsys):
    info = describe_checkpoint(converted["hyenadna-lightning"])
    assert info["source"].startswith("converted from HyenaDNA")
    assert "Lightning" in info["source"]
    assert info["source_sha256"] == sha256_file(GOLDEN / "hyenadna/lightning/weights.ckpt")
    assert info["source_config"] == json.loads((GOLDEN / "hyenadna/lightning/config.json").read_text())
    assert cli_main(["info", str(converted["caduceus-ph"]), "--json"]) == 0
    described = json.loads(capsys.readouterr().out)[0]
    assert "Caduceus-Ph" in described["source"]


def test_cli_convert(tmp_path, capsys):
    out = tmp_path / "ph"
    assert cli_main(["convert", "--from", "auto", str(GOLDEN / "caduceus_ph"), str(out)]) == 0
    ids = torch.from_numpy(np.load(GOLDEN / "caduceus_ph/input_ids.npy"))
    with torch.no_grad():
        logits = load_model(out)(ids)
    assert relative_error(logits, torch.from_numpy(np.load(GOLDEN / "caduceus_ph/logits.npy"))) <= TOLERANCE
    # Without --from, a published folder is pointed at the option; a wrong --from is named.
    assert cli_main(["convert", str(GOLDEN / "caduceus_ph"), str(tmp_path / "x")]) == 1
    assert "--from auto" in capsys.readouterr().err
    assert cli_main(["convert", "--from", "hyenadna", str(GOLDEN / "caduceus_ph"), str(tmp_path / "x")]) == 1
    assert "describes a caduceus model" in capsys.readouterr().err
    # A converted model re-stored in float16 keeps its provenance.
    assert cli_main(["convert", str(out), str(tmp_path / "half"), "--weights-dtype", "float16"]) == 0
    assert describe_checkpoint(tmp_path / "half")["source_sha256"] == sha256_file(GOLDEN / "caduceus_ph/model.safetensors")


# ---------------------------------------------------------------------------------------- refusals
def copy_golden(tmp_path: Path, folder: str, files: list[str]) -> Path:
    target = tmp_path / "copy"
    target.mkdir()
    for name in files:
        shutil.copy(GOLDEN / folder / name, target / name)
        (target / name).chmod(0o644)
    return target


def test_refuses_arbitrary_unpickling_in_one_line(tmp_path):
    source = copy_golden(tmp_path, "hyenadna/lightning", ["config.json"])
    state = torch.load(GOLDEN / "hyenadna/lightning/weights.ckpt", weights_only=True)
    state["hyper_parameters"] = argparse.Namespace(lr=1e-3)  # not a tensor or plain container
    torch.save(state, source / "weights.ckpt")
    with pytest.raises(InputError) as err:
        convert_published(source, tmp_path / "out")
    message = str(err.value)
    assert "\n" not in message and "weights_only" in message and "torch.save(" in message
    assert not (tmp_path / "out").exists()


def test_refuses_unknown_and_missing_keys(tmp_path):
    source = copy_golden(tmp_path, "hyenadna", ["config.json"])
    state = load_file(GOLDEN / "hyenadna/model.safetensors")
    save_file({**state, "hyena.backbone.extra.weight": torch.zeros(2)}, source / "model.safetensors")
    with pytest.raises(InputError, match="hyena.backbone.extra.weight"):
        convert_published(source, tmp_path / "out")
    state.pop("hyena.backbone.ln_f.bias")
    save_file(state, source / "model.safetensors")
    with pytest.raises(InputError, match="missing key 'hyena.backbone.ln_f.bias'"):
        convert_published(source, tmp_path / "out")


def test_refuses_positional_features_it_cannot_derive(tmp_path):
    source = copy_golden(tmp_path, "hyenadna", ["config.json"])
    state = load_file(GOLDEN / "hyenadna/model.safetensors")
    key = "hyena.backbone.layers.1.mixer.filter_fn.pos_emb.z"
    state[key] = state[key] + 1e-3  # e.g. trained with lr_pos_emb > 0
    save_file(state, source / "model.safetensors")
    with pytest.raises(InputError, match="pos_emb.z"):
        convert_published(source, tmp_path / "out")


@pytest.mark.parametrize("folder, edit, key", [
    ("caduceus_ps", {"bidirectional_strategy": "ew_multiply"}, "bidirectional_strategy"),
    ("caduceus_ps", {"bidirectional_weight_tie": False}, "bidirectional_weight_tie"),
    ("caduceus_ph", {"complement_map": {"7": 7}}, "complement_map"),
    ("caduceus_ph", {"some_new_option": 1}, "some_new_option"),
    ("hyenadna", {"short_filter_order": 4}, "short_filter_order"),
    ("hyenadna", {"d_inner": 100}, "d_inner"),
], ids=["strategy", "untied", "complement", "unknown-key", "short-filter", "d-inner"])
def test_refuses_configs_it_cannot_represent(tmp_path, folder, edit, key):
    weights = "model.safetensors"
    source = copy_golden(tmp_path, folder, [weights])
    config = json.loads((GOLDEN / folder / "config.json").read_text())
    config.update(edit)
    (source / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match=key):
        convert_published(source, tmp_path / "out")


# ---------------------------------------------------------------------------------------- published sizes
# Shapes of the published checkpoints (Hugging Face model cards / config.json): HyenaDNA
# (d_model, n_layer, l_max) with d_inner = 4 d_model, emb_dim 5, filter_order 64; the 1M model
# is tested at 2^20 + 2 positions, the longest context any of them was trained at.
HYENADNA_SIZES = [
    ("hyenadna-tiny-1k-seqlen-hf", 128, 2, 1026),
    ("hyenadna-tiny-1k-seqlen-d256-hf", 256, 2, 1026),
    ("hyenadna-tiny-16k-seqlen-d128-hf", 128, 2, 16386),
    ("hyenadna-small-32k-seqlen-hf", 256, 4, 32770),
    ("hyenadna-medium-160k-seqlen-hf", 256, 8, 160002),
    ("hyenadna-medium-450k-seqlen-hf", 256, 8, 450002),
    ("hyenadna-large-1m-seqlen-hf", 256, 8, 2**20 + 2),
]
# Caduceus (folder name, d_model, n_layer, rcps): 1k and 131k, Ph and PS.
CADUCEUS_SIZES = [
    ("caduceus-ph_seqlen-1k_d_model-118_n_layer-4", 118, 4, False),
    ("caduceus-ps_seqlen-1k_d_model-118_n_layer-4", 118, 4, True),
    ("caduceus-ph_seqlen-131k_d_model-256_n_layer-16", 256, 16, False),
    ("caduceus-ps_seqlen-131k_d_model-256_n_layer-16", 256, 16, True),
]


def hyenadna_hf_config(d_model: int, n_layer: int, l_max: int, filter_order: int = 64) -> dict:
    config = json.loads((GOLDEN / "hyenadna/config.json").read_text())
    config.update(d_model=d_model, n_layer=n_layer, d_inner=4 * d_model, max_seq_len=l_max,
                  filter_order=filter_order)
    return config


def caduceus_hf_config(d_model: int, n_layer: int, rcps: bool) -> dict:
    config = json.loads((GOLDEN / "caduceus_ps/config.json").read_text())
    config.update(d_model=d_model, n_layer=n_layer, rcps=rcps)
    return config


@pytest.mark.parametrize("name, d_model, n_layer, l_max", HYENADNA_SIZES, ids=[s[0] for s in HYENADNA_SIZES])
def test_hyenadna_published_shapes_build(name, d_model, n_layer, l_max):
    """Full-size config -> genossm model, runnable (random weights, a short input)."""
    config, _ = hyenadna_config(hyenadna_hf_config(d_model, n_layer, l_max), "huggingface", Path(name))
    assert (config.max_length, config.d_model, config.n_layers, config.vocab_size) == (l_max, d_model, n_layer, 16)
    with torch.no_grad():
        assert torch.isfinite(build_model(config).eval()(torch.randint(0, 16, (1, 16)))).all()


@pytest.mark.parametrize("name, d_model, n_layer, rcps", CADUCEUS_SIZES, ids=[s[0] for s in CADUCEUS_SIZES])
def test_caduceus_published_shapes_build(name, d_model, n_layer, rcps):
    config = caduceus_config(caduceus_hf_config(d_model, n_layer, rcps), Path(name), 131072)
    assert (config.d_model, config.n_layers, config.rc_equivariant, config.rc_swap_halves) == (d_model, n_layer, rcps, rcps)
    with torch.no_grad():
        assert torch.isfinite(build_model(config).eval()(torch.randint(0, 16, (1, 16)))).all()


def peer_positional_features(l_max: int, emb_dim: int = 5):
    """HyenaDNA's stored filter features, computed as its code does (float32 linspace)."""
    t = torch.linspace(0, 1, l_max)[None, :, None]
    bands = (emb_dim - 1) // 2
    w = 2 * math.pi * torch.linspace(0, l_max - 1, l_max)[None, :, None] / l_max
    f = torch.linspace(1e-4, bands - 1, bands)[None, None]
    return torch.cat([t, torch.cos(-f * w), torch.sin(-f * w)], dim=-1), t


def write_hyenadna_copy(directory: Path, d_model: int, n_layer: int, l_max: int, filter_order: int = 16) -> None:
    """A random-weight HyenaDNA checkpoint in the Hugging Face layout, small widths."""
    torch.manual_seed(0)
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(hyenadna_hf_config(d_model, n_layer, l_max, filter_order)))
    z, t = peer_positional_features(l_max)
    deltas = torch.linspace(math.log(1e-2) / 1.5, math.log(1e-2) / 0.3, d_model)[None, None]
    state = {"hyena.backbone.embeddings.word_embeddings.weight": torch.randn(16, d_model) * 0.02,
             "hyena.backbone.ln_f.weight": 1 + 0.1 * torch.randn(d_model),
             "hyena.backbone.ln_f.bias": 0.1 * torch.randn(d_model), "lm_head.weight": torch.randn(16, d_model)}
    shapes = {"mixer.in_proj.weight": (3 * d_model, d_model), "mixer.in_proj.bias": (3 * d_model,),
              "mixer.out_proj.weight": (d_model, d_model), "mixer.out_proj.bias": (d_model,),
              "mixer.short_filter.weight": (3 * d_model, 1, 3), "mixer.short_filter.bias": (3 * d_model,),
              "mixer.filter_fn.bias": (d_model,),
              "mixer.filter_fn.implicit_filter.0.weight": (filter_order, 5),
              "mixer.filter_fn.implicit_filter.0.bias": (filter_order,),
              "mixer.filter_fn.implicit_filter.2.weight": (filter_order, filter_order),
              "mixer.filter_fn.implicit_filter.2.bias": (filter_order,),
              "mixer.filter_fn.implicit_filter.4.weight": (filter_order, filter_order),
              "mixer.filter_fn.implicit_filter.4.bias": (filter_order,),
              "mixer.filter_fn.implicit_filter.6.weight": (d_model, filter_order),
              "norm1.weight": (d_model,), "norm1.bias": (d_model,), "norm2.weight": (d_model,),
              "norm2.bias": (d_model,), "mlp.fc1.weight": (4 * d_model, d_model), "mlp.fc1.bias": (4 * d_model,),
              "mlp.fc2.weight": (d_model, 4 * d_model), "mlp.fc2.bias": (d_model,)}
    for i in range(n_layer):
        prefix = f"hyena.backbone.layers.{i}."
        for key, shape in shapes.items():
            scale = 1 / math.sqrt(shape[-1]) if len(shape) > 1 else 0.1
            state[prefix + key] = torch.randn(shape) * scale + (1.0 if key.startswith("norm") and key.endswith("weight") else 0.0)
        state[prefix + "mixer.filter_fn.implicit_filter.1.freq"] = 10 + torch.randn(1, filter_order)
        state[prefix + "mixer.filter_fn.pos_emb.z"] = z.clone()
        state[prefix + "mixer.filter_fn.pos_emb.t"] = t.clone()
        state[prefix + "mixer.filter_fn.modulation.deltas"] = deltas.clone()
    save_file(state, directory / "model.safetensors")


def peer_filter(state: dict, prefix: str, positions: torch.Tensor, shift: float = 0.05) -> torch.Tensor:
    """HyenaDNA's filter taps at `positions` from its stored tables: (channels, n)."""
    f = prefix + "mixer.filter_fn."
    z = state[f + "pos_emb.z"][0, positions]
    t = state[f + "pos_emb.t"][0, positions]
    freq = state[f + "implicit_filter.1.freq"]
    h = z
    for j in (0, 2, 4):
        h = torch.sin(freq * torch.nn.functional.linear(h, state[f"{f}implicit_filter.{j}.weight"],
                                                        state[f"{f}implicit_filter.{j}.bias"]))
    h = torch.nn.functional.linear(h, state[f + "implicit_filter.6.weight"])
    decay = torch.exp(-t * state[f + "modulation.deltas"][0].abs())
    return (h * (decay + shift)).T


@pytest.mark.parametrize("name, d_model, n_layer, l_max", HYENADNA_SIZES, ids=[s[0] for s in HYENADNA_SIZES])
def test_hyenadna_published_sizes_convert(tmp_path, name, d_model, n_layer, l_max):
    """Small random-weight copy at the published context: converts (positional features and decay
    rates agree with genossm's), and the filter at the last trained positions is the peer's."""
    source = tmp_path / name
    write_hyenadna_copy(source, 8, min(n_layer, 2), l_max)
    model = load_model(convert_published(source, tmp_path / "out"))
    assert model.config.max_length == l_max
    state = load_file(source / "model.safetensors")
    tail = torch.arange(l_max - 64, l_max)
    with torch.no_grad():
        ours = model.blocks[0].mixer.filter(64, start=l_max - 64)
    expected = peer_filter(state, "hyena.backbone.layers.0.", tail)
    assert relative_error(ours, expected) <= TOLERANCE
    with torch.no_grad():
        assert torch.isfinite(model(torch.randint(7, 12, (1, 64)))).all()


def write_caduceus_copy(directory: Path, d_model: int, n_layer: int, rcps: bool) -> None:
    """A random-weight Caduceus checkpoint in the Hugging Face layout (model.safetensors keys)."""
    torch.manual_seed(1)
    directory.mkdir()
    config = caduceus_hf_config(d_model, n_layer, rcps)
    (directory / "config.json").write_text(json.dumps(config))
    d_inner, rank, n = 2 * d_model, math.ceil(d_model / 16), 16
    p = "caduceus.backbone."
    complement = torch.tensor([int(config["complement_map"][str(i)]) for i in range(16)])
    if rcps:
        state = {p + "embeddings.word_embeddings.embedding.weight": torch.randn(16, d_model),
                 p + "embeddings.word_embeddings.complement_map": complement, "lm_head.complement_map": complement.clone()}
    else:
        state = {p + "embeddings.word_embeddings.weight": torch.randn(16, d_model)}
    state[p + "norm_f.weight"] = 1 + 0.1 * torch.randn(d_model)
    mixer = "mixer.submodule." if rcps else "mixer."
    for i in range(n_layer):
        layer = f"{p}layers.{i}."
        state[layer + "norm.weight"] = 1 + 0.1 * torch.randn(d_model)
        state[layer + mixer + "mamba_fwd.in_proj.weight"] = torch.randn(2 * d_inner, d_model) / math.sqrt(d_model)
        state[layer + mixer + "mamba_fwd.out_proj.weight"] = torch.randn(d_model, d_inner) / math.sqrt(d_inner * n_layer)
        for direction in ("mamba_fwd.", "mamba_rev."):
            m = layer + mixer + direction
            state[m + "conv1d.weight"] = torch.randn(d_inner, 1, 4) * 0.5
            state[m + "conv1d.bias"] = torch.randn(d_inner) * 0.1
            state[m + "x_proj.weight"] = torch.randn(rank + 2 * n, d_inner) / math.sqrt(d_inner)
            state[m + "dt_proj.weight"] = torch.randn(d_inner, rank) / math.sqrt(rank)
            state[m + "dt_proj.bias"] = torch.log(torch.expm1(torch.full((d_inner,), 0.01)))
            state[m + "A_log"] = torch.log(torch.arange(1, n + 1, dtype=torch.float32)).repeat(d_inner, 1)
            state[m + "D"] = torch.ones(d_inner)
    save_file(state, directory / "model.safetensors")


@pytest.mark.parametrize("name, d_model, n_layer, rcps", CADUCEUS_SIZES, ids=[s[0] for s in CADUCEUS_SIZES])
def test_caduceus_published_sizes_convert(tmp_path, name, d_model, n_layer, rcps):
    """Small random-weight copy: converts, the context comes from the folder name, a PS model is
    exactly RC-equivariant at its published depth (halves swapped before every block)."""
    source = tmp_path / name
    write_caduceus_copy(source, 22, min(n_layer, 4), rcps)  # 22: dt_rank 2, widths not powers of 2
    model = load_model(convert_published(source, tmp_path / "out"))
    assert model.config.max_length == (131072 if "131k" in name else 1024)
    assert model.config.rc_posthoc is not rcps
    torch.manual_seed(2)
    tokens = torch.randint(7, 12, (2, 33))
    complement = torch.as_tensor(Vocabulary(PEER_VOCAB, unknown="[UNK]").complement(16))
    with torch.no_grad():
        logits = model(tokens)
        reverse = model(complement[tokens].flip(-1))
    assert torch.isfinite(logits).all()
    if rcps:
        torch.testing.assert_close(reverse, logits.flip(1)[..., complement], rtol=1e-4, atol=1e-5)
    # The commands' view: genossm ids in, [SEP] appended, logits over genossm's vocabulary.
    genossm_tokens = tokens - 7
    with torch.no_grad():
        view_logits = inference_view(model)(genossm_tokens)
    assert view_logits.shape == (2, 33, 7) and torch.isfinite(view_logits).all()


@pytest.mark.parametrize("case", ["hyenadna-hf-safetensors", "caduceus-ps"])
def test_commands_run_converted_models(converted, tmp_path, case):
    """score, embed and mutagenesis load a converted model (causal and masked scoring)."""
    model = str(converted[case])
    tsv = tmp_path / "scores.tsv"
    assert cli_main(["-q", "score", "sample", "--fasta", "sample", "--model", model, "--window", "64",
                     "--tsv", str(tsv), "-o", str(tmp_path / "out.vcf")]) == 0
    rows = [line.split("\t") for line in tsv.read_text().splitlines()[1:]]
    ok = [row for row in rows if row[-1] == "ok"]
    assert ok and all(math.isfinite(float(row[6])) for row in ok)
    assert cli_main(["-q", "embed", "--regions", "N315:5001-5100", "--fasta", "sample", "--model", model,
                     "-o", str(tmp_path / "emb.h5")]) == 0
    assert cli_main(["-q", "mutagenesis", "--region", "N315:5201-5203", "--fasta", "sample", "--model", model,
                     "--window", "64", "--out-prefix", str(tmp_path / "mut"), "--no-plot"]) == 0
    assert len((tmp_path / "mut.tsv").read_text().splitlines()) == 1 + 3 * 3
