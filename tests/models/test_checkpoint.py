"""Checkpoint directories: bit-exact round trips, dtype on load, corrupt inputs, Lightning
conversion (library and CLI), and the summary `genossm info` prints."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import genossm
from genossm.cli.main import main as cli_main
from genossm.errors import InputError
from genossm.models.checkpoint import (
    checkpoint_sha256,
    convert_lightning_checkpoint,
    describe_checkpoint,
    load_model,
    save_model,
)
from genossm.models.config import ModelConfig
from genossm.models.lm import build_model, count_parameters

TOKENS = torch.tensor([[0, 1, 2, 3, 4, 3, 2, 2, 1, 0, 0, 3, 1, 2, 5, 3, 3]])


def make_model(kind: str = "hyena"):
    torch.manual_seed(0)
    if kind == "hyena":
        config = ModelConfig(arch="hyena", d_model=8, n_layers=2, max_length=64, hyena={"filter_order": 8})
    else:
        config = ModelConfig(arch="mamba", d_model=8, n_layers=2, bidirectional=True, rc_equivariant=True,
                             objective="masked", mamba={"d_state": 4})
    return build_model(config).eval()


@pytest.fixture
def saved(tmp_path):
    model = make_model()
    path = save_model(model, tmp_path / "ckpt", extra={"step": 12, "data": "lambda"})
    return model, path


@pytest.mark.parametrize("kind", ["hyena", "rc-mamba"])
def test_round_trip_is_bit_exact(tmp_path, kind):
    model = make_model(kind)
    path = save_model(model, tmp_path / "ckpt")
    loaded = load_model(path)
    assert loaded.config == model.config and not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(TOKENS), model(TOKENS))
    # The top-level lazy API resolves to the same functions.
    assert torch.equal(genossm.load_model(path).embedding.weight, model.embedding.weight)


def test_config_json_contents(saved):
    model, path = saved
    record = json.loads((path / "config.json").read_text())
    assert record["format"] == "genossm-checkpoint" and record["format_version"] == 1
    assert record["genossm_version"] == genossm.__version__
    assert record["model"] == model.config.to_dict()
    assert record["tokenizer"]["vocab"][:4] == ["A", "C", "G", "T"]
    assert record["training"] == {"step": 12, "data": "lambda"}
    assert record["weights"]["sha256"] == checkpoint_sha256(path) == checkpoint_sha256(path / "model.safetensors")
    assert sorted(p.name for p in path.parent.iterdir()) == ["ckpt"]  # no temporary left behind


@pytest.mark.parametrize("kind", ["hyena", "rc-mamba"])
def test_load_onto_dtype(tmp_path, kind):
    model = make_model(kind)
    path = save_model(model, tmp_path / "ckpt")
    loaded = load_model(path, dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in loaded.parameters())
    with torch.no_grad():
        logits = loaded(TOKENS)
        expected = model(TOKENS)
    assert logits.dtype == torch.bfloat16
    torch.testing.assert_close(logits.float(), expected, rtol=0.05, atol=0.05)


def test_overwrite_existing_checkpoint_but_not_other_directories(saved, tmp_path):
    _, path = saved
    other = make_model("rc-mamba")
    save_model(other, path)
    assert load_model(path).config.rc_equivariant
    unrelated = tmp_path / "results"
    unrelated.mkdir()
    (unrelated / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a genossm checkpoint; choose a new"):
        save_model(other, unrelated)
    assert (unrelated / "notes.txt").read_text() == "keep me"


def test_missing_and_corrupt_files(saved, tmp_path):
    _, path = saved
    with pytest.raises(InputError, match="checkpoint not found"):
        load_model(tmp_path / "nothing")
    with pytest.raises(InputError, match="config.json is missing"):
        load_model(tmp_path)
    config_path = path / "config.json"
    good_config = config_path.read_text()

    config_path.write_text(good_config[:40])
    with pytest.raises(InputError, match="not valid JSON"):
        load_model(path)

    record = json.loads(good_config)
    record["format_version"] = 2
    config_path.write_text(json.dumps(record))
    with pytest.raises(InputError, match="format_version 2 is newer"):
        load_model(path)
    config_path.write_text(good_config)

    weights = path / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="does not match the SHA-256"):
        load_model(path)
    with pytest.raises(InputError, match="corrupt weights file"):
        load_model(path, verify=False)
    weights.unlink()
    with pytest.raises(InputError, match="model.safetensors is missing"):
        load_model(path)


def test_mismatched_weights_name_the_keys(saved):
    _, path = saved
    weights = path / "model.safetensors"
    state = load_file(weights)
    del state["blocks.0.mixer.in_proj.weight"]
    state["blocks.9.extra"] = torch.zeros(2)
    state["embedding.weight"] = torch.zeros(3, 8)
    save_file(state, weights)
    with pytest.raises(InputError) as info:
        load_model(path, verify=False)
    message = str(info.value)
    assert "missing blocks.0.mixer.in_proj.weight" in message
    assert "unexpected blocks.9.extra" in message
    assert "wrong shape embedding.weight (3, 8) (model: (7, 8))" in message


def test_describe_checkpoint(saved):
    model, path = saved
    info = describe_checkpoint(path)
    assert info["parameters"] == count_parameters(model)
    assert info["sha256"] == checkpoint_sha256(path) and info["sha256_ok"] is True
    assert info["files"]["model.safetensors"] == (path / "model.safetensors").stat().st_size
    assert info["training"]["step"] == 12
    assert info["summary"].startswith("hyena, causal, d_model 8 x 2 layers")
    json.dumps(info)  # plain data, printable by `genossm info --json`


class NotAllowed:
    """An arbitrary class in a .ckpt: unpickling it would import and run code from its module."""


def fake_lightning_checkpoint(path, model, prefix="model.", **extra):
    torch.save({
        "epoch": 3,
        "global_step": 1200,
        "state_dict": {f"{prefix}{name}": t for name, t in model.state_dict().items()},
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-3}]}],
        "hyper_parameters": {"model_config": model.config.to_dict(), "lr": 0.001, **extra},
    }, path)


def test_convert_lightning_checkpoint(tmp_path):
    model = make_model("rc-mamba")
    ckpt = tmp_path / "last.ckpt"
    fake_lightning_checkpoint(ckpt, model)
    out = convert_lightning_checkpoint(ckpt, tmp_path / "model")
    loaded = load_model(out)
    with torch.no_grad():
        assert torch.equal(loaded(TOKENS), model(TOKENS))
    training = describe_checkpoint(out)["training"]
    assert training["global_step"] == 1200 and training["hyper_parameters"] == {"lr": 0.001}


def test_convert_a_compiled_models_checkpoint_with_its_training_record(tmp_path):
    """torch.compile'd models save `model._orig_mod.*` keys; `training` replaces the record."""
    model = make_model()
    ckpt = tmp_path / "last.ckpt"
    fake_lightning_checkpoint(ckpt, model, prefix="model._orig_mod.")
    out = convert_lightning_checkpoint(ckpt, tmp_path / "model", training={"steps": 5})
    with torch.no_grad():
        assert torch.equal(load_model(out)(TOKENS), model(TOKENS))
    assert describe_checkpoint(out)["training"] == {"steps": 5}


def test_convert_cli(tmp_path, capsys):
    model = make_model()
    ckpt = tmp_path / "last.ckpt"
    fake_lightning_checkpoint(ckpt, model)
    assert cli_main(["convert", str(ckpt), str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out == ""  # logs go to stderr only
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path / "out")(TOKENS), model(TOKENS))
    assert cli_main(["convert", str(tmp_path / "missing.ckpt"), str(tmp_path / "x")]) == 1
    assert "missing.ckpt: Lightning checkpoint not found" in capsys.readouterr().err


def test_convert_refuses_unsafe_or_foreign_checkpoints(tmp_path):
    model = make_model()
    unsafe = tmp_path / "unsafe.ckpt"
    fake_lightning_checkpoint(unsafe, model, callback=NotAllowed())
    with pytest.raises(InputError, match="refused to read the checkpoint: it needs the global .*NotAllowed") as info:
        convert_lightning_checkpoint(unsafe, tmp_path / "out")
    assert "weights_only=False" not in str(info.value) and "\n" not in str(info.value)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}}, foreign)
    with pytest.raises(InputError, match="no hyper_parameters\\['model_config'\\]"):
        convert_lightning_checkpoint(foreign, tmp_path / "out")
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a readable"):
        convert_lightning_checkpoint(garbage, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_convert_model_directory_to_float16(tmp_path):
    """A model directory re-stored in float16: half the file, loaded as float32, close outputs,
    the training record kept, the stored dtype recorded."""
    model = make_model()
    source = save_model(model, tmp_path / "fp32", extra={"steps": 7})
    assert cli_main(["convert", str(source), str(tmp_path / "fp16"), "--weights-dtype", "float16"]) == 0
    record = describe_checkpoint(tmp_path / "fp16")
    assert record["training"] == {"steps": 7}
    assert json.loads((tmp_path / "fp16" / "config.json").read_text())["weights"]["dtype"] == "float16"
    size = lambda d: (d / "model.safetensors").stat().st_size  # noqa: E731
    assert size(tmp_path / "fp16") < 0.7 * size(source)  # the header (names, shapes) is not halved
    loaded = load_model(tmp_path / "fp16")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    with torch.no_grad():
        expected, got = model(TOKENS), loaded(TOKENS)
    assert not torch.equal(got, expected)  # the weights were rounded ...
    torch.testing.assert_close(got, expected, atol=2e-2, rtol=2e-2)  # ... by float16's 11 bits
    assert cli_main(["convert", str(source), str(source)]) == 1  # never overwrite the input in place


class Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("case", ["os.system", "truncated", "empty", "zeros"])
def test_hostile_or_corrupt_lightning_checkpoints_are_one_line_errors(tmp_path, case):
    from genossm.models.checkpoint import read_lightning_checkpoint

    path = tmp_path / "last.ckpt"
    if case == "os.system":
        torch.save({"state_dict": {}, "payload": Evil()}, path)
    elif case == "truncated":
        torch.save({"state_dict": {"w": torch.zeros(1000)}}, path)
        path.write_bytes(path.read_bytes()[:300])
    elif case == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(bytes(4096))
    with pytest.raises(InputError) as info:
        read_lightning_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message and "weights_only=False" not in message and "last.ckpt" in message
    if case == "os.system":
        assert "system" in message  # names the blocked global (posix.system / nt.system)


def write_config(path, edit):
    record = json.loads((path / "config.json").read_text())
    edit(record)
    (path / "config.json").write_text(json.dumps(record))


@pytest.mark.parametrize("case", ["more-layers", "million-layers", "wider", "vocab", "int-dtype", "deep-json",
                                  "huge-json", "weights-outside", "weights-absolute", "weights-symlink-out",
                                  "checksum"])
def test_model_directories_from_strangers_are_checked_before_building(saved, tmp_path, monkeypatch, case):
    from genossm.models import lm

    _, path = saved
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes((path / "model.safetensors").read_bytes())
    if case == "more-layers":
        write_config(path, lambda r: r["model"].update(n_layers=3))
    elif case == "million-layers":
        write_config(path, lambda r: r["model"].update(n_layers=1_000_000))
    elif case == "wider":
        write_config(path, lambda r: r["model"].update(d_model=4096))
    elif case == "vocab":
        write_config(path, lambda r: r["model"].update(vocab_size=7_000_000))
    elif case == "int-dtype":
        state = load_file(path / "model.safetensors")
        state["embedding.weight"] = state["embedding.weight"].to(torch.int32)
        save_file(state, path / "model.safetensors")
    elif case == "deep-json":
        (path / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    elif case == "huge-json":
        with open(path / "config.json", "w") as handle:
            handle.write('{"format": "genossm-checkpoint", "pad": "' + "x" * (17 << 20) + '"}')
    elif case == "weights-outside":
        write_config(path, lambda r: r["weights"].update(file="../outside.safetensors"))
    elif case == "weights-absolute":
        write_config(path, lambda r: r["weights"].update(file=str(outside)))
    elif case == "weights-symlink-out":
        (path / "model.safetensors").unlink()
        (path / "model.safetensors").symlink_to(outside)
    elif case == "checksum":
        state = load_file(path / "model.safetensors")
        state["embedding.weight"] = state["embedding.weight"] + 1
        save_file(state, path / "model.safetensors")
    # Nothing is built for real: a build would allocate what the config says.
    monkeypatch.setattr(lm, "build_model", _meta_only(lm.build_model))
    with pytest.raises(InputError) as info:
        load_model(path, verify=case == "checksum")
    message = str(info.value)
    assert "\n" not in message and "verify=False" not in message
    expected = {"more-layers": "describes 3 layers", "million-layers": "describes 1000000 layers",
                "wider": "wrong shape", "vocab": "wrong shape", "int-dtype": "wrong dtype",
                "deep-json": "nested more than", "huge-json": "more than any genossm config",
                "weights-outside": "inside the checkpoint directory", "weights-absolute": "inside the checkpoint",
                "weights-symlink-out": "outside the checkpoint directory", "checksum": "genossm info"}[case]
    assert expected in message
    if case in ("weights-outside", "weights-absolute", "deep-json"):
        with pytest.raises(InputError):
            describe_checkpoint(path)


def _meta_only(build_model):
    def guarded(config, *args, **kwargs):
        if torch.get_default_device().type != "meta":
            pytest.fail("the model was built for real before the weights were checked")
        return build_model(config, *args, **kwargs)
    return guarded
