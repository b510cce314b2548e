"""Convert a Lightning training checkpoint (.ckpt) or a published HyenaDNA / Caduceus checkpoint into
a genossm model directory, or re-store a model directory's weights in another dtype.

The .ckpt holds training state (optimizer, schedulers); the output directory holds only what
inference needs: config.json (model config, tokenizer, genossm version, training record) and
model.safetensors. The .ckpt is read with torch.load(weights_only=True): no code in it runs.
--weights-dtype float16 halves the file (models are always loaded and run in float32, so only
the stored weights are rounded); the bundled model is stored that way.

--from hyenadna|caduceus|auto converts a downloaded published checkpoint folder: HyenaDNA in the
Hugging Face layout (config.json + model.safetensors or pytorch_model.bin) or the original
Lightning layout (config.json + weights.ckpt), Caduceus-Ph / -PS (config.json + model.safetensors
or pytorch_model.bin). The converted model gives the peer's logits (float32 rounding), keeps its
token ids and tokenizer, and records where it came from (`genossm info OUT_DIR`).

examples:
  genossm convert --from hyenadna hyenadna-large-1m-seqlen-hf models/hyenadna-large-1m
  genossm convert --from caduceus caduceus-ps_seqlen-131k_d_model-256_n_layer-16 models/caduceus-ps-131k
  genossm convert runs/last.ckpt models/my-hyena
  genossm convert runs/bacteria/model models/my-hyena-fp16 --weights-dtype float16
  genossm info models/my-hyena
"""

from __future__ import annotations

import logging

from genossm.cli.main import subcommand_parser

log = logging.getLogger("genossm.cli.convert")


def register(subparsers) -> None:
    parser = subcommand_parser(subparsers, "convert", __doc__)
    parser.add_argument("checkpoint", metavar="IN",
                        help="Lightning checkpoint (.ckpt) written by `genossm pretrain`, a genossm model "
                             "directory, or (with --from) a published checkpoint folder")
    parser.add_argument("output", metavar="OUT_DIR",
                        help="checkpoint directory to write (replaced if it is one already)")
    parser.add_argument("--weights-dtype", choices=("float32", "float16", "bfloat16"), default=None,
                        help="store the weights in this dtype (default: as trained, float32)")
    parser.add_argument("--from", dest="source", choices=("hyenadna", "caduceus", "auto"), default=None,
                        help="IN is a published HyenaDNA or Caduceus checkpoint folder (auto: tell from its config.json)")
    parser.add_argument("--max-length", type=int, default=None, metavar="N",
                        help="Caduceus only: the model's context (default: from the folder name, e.g. "
                             "seqlen-131k, else 131072); sets e.g. the default scoring window")
    parser.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from genossm.models.checkpoint import (checkpoint_sha256, convert_lightning_checkpoint,
                                           describe_checkpoint, load_model, save_model)

    source = Path(args.checkpoint)
    if getattr(args, "source", None):
        from genossm.models.published import convert_published

        if source.resolve() == Path(args.output).resolve():
            log.error("%s: write the converted model to another directory", source)
            return 1
        out = convert_published(source, args.output, source=args.source, weights_dtype=args.weights_dtype,
                                max_length=args.max_length)
        log.info("wrote %s (weights sha256 %s)", out, checkpoint_sha256(out))
        return 0
    if args.max_length is not None:
        from genossm.errors import UsageError

        raise UsageError("--max-length goes with --from caduceus")
    if source.is_dir() and _is_published(source):
        from genossm.errors import InputError

        raise InputError("a published HyenaDNA or Caduceus checkpoint folder, not a genossm checkpoint; "
                         "convert it with --from auto (or --from hyenadna / --from caduceus)", path=source)
    if source.is_dir():
        if source.resolve() == Path(args.output).resolve():
            log.error("%s: write the converted model to another directory", source)
            return 1
        from genossm.models.checkpoint import read_checkpoint_config

        training = describe_checkpoint(source)["training"]
        provenance = read_checkpoint_config(source).get("provenance")
        out = save_model(load_model(source), args.output, extra=training, weights_dtype=args.weights_dtype,
                         provenance=provenance)
    else:
        out = convert_lightning_checkpoint(source, args.output, weights_dtype=args.weights_dtype)
    log.info("wrote %s (weights sha256 %s)", out, checkpoint_sha256(out))
    return 0


def _is_published(directory) -> bool:
    import json

    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("format") != "genossm-checkpoint" and (
        config.get("model_type") in ("hyenadna", "caduceus") or isinstance(config.get("layer"), dict))
