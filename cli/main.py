"""genossm: DNA language models (Hyena, Mamba) for variant scoring, embeddings and pretraining.

Data goes to stdout, logs and progress to stderr. Exit codes: 0 success, 1 bad input (one line
naming the file, line and problem), 2 bad usage. Add --debug to see a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from genossm import __version__
from genossm.cli.options import add_common_options, add_groups
from genossm.errors import GenossmError
from genossm.progress import configure_logging

# Subcommand modules, in the order `--help` lists them. Each module has a docstring (its help
# text) and `register(subparsers)`, which adds its parser and sets `func` to the function that
# runs it. Heavy imports happen inside those functions so `genossm --help` stays instant.
COMMANDS: list[str] = [
    "convert",
    "info",
    "pretrain",
    "score",
    "embed",
    "mutagenesis",
]

log = logging.getLogger("genossm")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genossm",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"genossm {__version__}")
    add_common_options(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"genossm.cli.{name}").register(subparsers)
    return parser


def subcommand_parser(subparsers, module_name: str, doc: str, **kwargs) -> argparse.ArgumentParser:
    """A subcommand parser whose help is its module's docstring (first line short, rest epilog)."""
    summary, _, details = doc.strip().partition("\n\n")
    parser = subparsers.add_parser(
        module_name, help=summary, description=summary, epilog=details,
        formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs,
    )
    add_groups(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    configure_logging(getattr(args, "quiet", False), debug)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        result = args.func(args)
    except GenossmError as err:
        if debug:
            raise
        print(f"genossm {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("genossm: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `genossm score ... - | head`: the reader went away; not an error of ours.
        sys.stderr.close()
        return 0
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
