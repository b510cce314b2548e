"""Checkpointing variants for the longest inputs: block inputs offloaded to host memory, and the
MLP recomputed in chunks. Both must give the gradients of the plain model."""

from __future__ import annotations

import pytest
import torch

from genossm.errors import InputError
from genossm.models.config import load_model_config
from genossm.models.lm import build_model


def gradients(config, tokens, **flags):
    for key, value in flags.items():
        setattr(config, key, value)
    torch.manual_seed(0)
    model = build_model(config).double().train()
    logits = model(tokens[:, :-1])
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten())
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", ["tiny", "tiny-mamba"])
@pytest.mark.parametrize("flags", [
    {"checkpointing": True, "checkpoint_offload": True},
    {"checkpointing": True, "checkpoint_mlp_chunk": 48},
    {"checkpointing": True, "checkpoint_offload": True, "checkpoint_mlp_chunk": 100},
])
def test_offloaded_and_chunked_checkpointing_give_the_plain_gradients(name, flags):
    tokens = torch.randint(0, 4, (2, 301), generator=torch.Generator().manual_seed(1))
    loss, expected = gradients(load_model_config(name), tokens)
    got_loss, got = gradients(load_model_config(name), tokens, **flags)
    assert torch.equal(got_loss, loss)
    assert got.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-10, atol=1e-12, msg=key)


def test_offloaded_checkpointing_replays_dropout():
    """The recompute must draw the forward's dropout masks (the RNG state is replayed)."""
    tokens = torch.randint(0, 4, (1, 200), generator=torch.Generator().manual_seed(2))
    config = load_model_config("tiny")
    config.dropout = 0.3
    _, expected = gradients(config, tokens)
    config = load_model_config("tiny")
    config.dropout = 0.3
    _, got = gradients(config, tokens, checkpointing=True, checkpoint_offload=True)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-10, atol=1e-12, msg=key)


def test_mlp_chunk_must_be_a_non_negative_integer():
    config = load_model_config("tiny")
    config.checkpoint_mlp_chunk = -1
    with pytest.raises(InputError, match="checkpoint_mlp_chunk"):
        config.__post_init__()


def test_pretrain_refuses_offload_with_several_devices(tmp_path):
    from genossm.train.recipe import load_recipe
    from genossm.train.run import pretrain

    recipe = load_recipe("tiny-cpu", [f"data.fasta=[{tmp_path / 'unused.fa'}]", "trainer.devices=2",
                                      "model_overrides={checkpointing: true, checkpoint_offload: true}"])
    with pytest.raises(InputError, match="single process"):
        pretrain(recipe, tmp_path / "run")
