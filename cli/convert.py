"""Convert a Lightning training checkpoint (.ckpt) into a genossm model directory, or re-store a
model directory's weights in another dtype.

The .ckpt holds training state (optimizer, schedulers); the output directory holds only what
inference needs: config.json (model config, tokenizer, genossm version, training record) and
model.safetensors. The .ckpt is read with torch.load(weights_only=True): no code in it runs.
--weights-dtype float16 halves the file (models are always loaded and run in float32, so only
the stored weights are rounded); the bundled model is stored that way.

examples:
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
                        help="Lightning checkpoint (.ckpt) written by `genossm pretrain`, or a genossm model directory")
    parser.add_argument("output", metavar="OUT_DIR",
                        help="checkpoint directory to write (replaced if it is one already)")
    parser.add_argument("--weights-dtype", choices=("float32", "float16", "bfloat16"), default=None,
                        help="store the weights in this dtype (default: as trained, float32)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from genossm.models.checkpoint import (checkpoint_sha256, convert_lightning_checkpoint,
                                           describe_checkpoint, load_model, save_model)

    source = Path(args.checkpoint)
    if source.is_dir():
        if source.resolve() == Path(args.output).resolve():
            log.error("%s: write the converted model to another directory", source)
            return 1
        training = describe_checkpoint(source)["training"]
        out = save_model(load_model(source), args.output, extra=training, weights_dtype=args.weights_dtype)
    else:
        out = convert_lightning_checkpoint(source, args.output, weights_dtype=args.weights_dtype)
    log.info("wrote %s (weights sha256 %s)", out, checkpoint_sha256(out))
    return 0
