"""genossm: DNA language models (Hyena, Mamba) for variant scoring, embeddings and pretraining.

Data goes to stdout, logs and progress to stderr. Exit codes: 0 success, 1 bad input (one line
naming the file, line and problem), 2 bad usage. Add --debug to see a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import signal
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
    "finetune",
    "predict",
    "score",
    "embed",
    "mutagenesis",
    "calibrate",
]

log = logging.getLogger("genossm")


class Terminated(KeyboardInterrupt):
    """SIGTERM (what schedulers send) unwinds like Ctrl-C: temporaries removed, resume logs kept."""


def _terminate(signum, frame) -> None:
    raise Terminated()


class Parser(argparse.ArgumentParser):
    """argparse with "did you mean" for a mistyped option or subcommand."""

    def error(self, message: str):
        unknown = message.partition("unrecognized arguments: ")[2].split()
        if message.startswith("argument COMMAND: invalid choice"):
            unknown = [message.split("'")[1]] if "'" in message else []
        hints = []
        for word in unknown:
            name = word.split("=", 1)[0]
            close = difflib.get_close_matches(name, self._known_words(), n=1, cutoff=0.6)
            if close:
                hints.append(f"{name}: did you mean {close[0]}?")
        super().error("; ".join([message, *hints]))

    def _known_words(self) -> list[str]:
        """Every option and subcommand of this parser and of its subcommands."""
        words, parsers = [], [self]
        while parsers:
            parser = parsers.pop()
            for action in parser._actions:
                words += action.option_strings
                if isinstance(action, argparse._SubParsersAction):
                    words += list(action.choices)
                    parsers += list(action.choices.values())
        return words


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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


def _resume_hint(args: argparse.Namespace) -> str:
    """What continues an interrupted resumable run (score and embed with an output file)."""
    if not hasattr(args, "resume") or getattr(args, "output", "-") in (None, "-"):
        return ""
    return "; rerun the same command with --resume to continue where it stopped"


def main(argv: list[str] | None = None) -> int:
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: leave signals to the caller
        return _main(argv)
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> int:
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
    except KeyboardInterrupt as interrupt:
        print(f"genossm {args.command}: interrupted{_resume_hint(args)}", file=sys.stderr)
        return 143 if isinstance(interrupt, Terminated) else 130
    except BrokenPipeError:
        # `genossm score ... - | head`: the reader went away; not an error of ours.
        sys.stderr.close()
        return 0
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
