"""Convert a Lightning training checkpoint (.ckpt) into a genossm model directory.

The .ckpt holds training state (optimizer, schedulers); the output directory holds only what
inference needs: config.json (model config, tokenizer, genossm version, training record) and
model.safetensors. The .ckpt is read with torch.load(weights_only=True): no code in it runs.

examples:
  genossm convert runs/last.ckpt models/my-hyena
  genossm info models/my-hyena
"""

from __future__ import annotations

import logging

from genossm.cli.main import subcommand_parser

log = logging.getLogger("genossm.cli.convert")


def register(subparsers) -> None:
    parser = subcommand_parser(subparsers, "convert", __doc__)
    parser.add_argument("checkpoint", metavar="IN.ckpt", help="Lightning checkpoint written by `genossm pretrain`")
    parser.add_argument("output", metavar="OUT_DIR",
                        help="checkpoint directory to write (replaced if it is one already)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from genossm.models.checkpoint import checkpoint_sha256, convert_lightning_checkpoint

    out = convert_lightning_checkpoint(args.checkpoint, args.output)
    log.info("wrote %s (weights sha256 %s)", out, checkpoint_sha256(out))
    return 0
