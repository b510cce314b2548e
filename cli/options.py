"""Options that several subcommands share, declared once, and the argument groups they go in.

Every subcommand's `--help` lists its own options first (what to compute), then the same groups:
inputs, outputs, compute (`groups(parser)`), and the common options (-q, --debug, accepted
before or after the subcommand name). A shared option has one flag, one default and one help
text everywhere: `add_<option>(group)` adds it to the group the subcommand passes; a subcommand
declares only what is its own. `command_line` rebuilds the canonical command line that outputs
record in their headers.
"""

from __future__ import annotations

import argparse
import shlex

# Options that cannot change a result (where it runs, how loud, whether it resumes): left out of
# the command line in output headers, so a resumed run, or one sharded over several devices,
# writes the same bytes as an uninterrupted one-device run.
_NOT_IN_HEADERS = {"func", "command", "resume", "quiet", "debug", "threads", "device", "batch_size", "devices",
                   "num_nodes"}
# Flags that store False in `dest`: the header names the flag when it is given.
_NEGATED = {"both_strands": "--no-rc"}


def add_groups(parser: argparse.ArgumentParser) -> None:
    """A subcommand's argument groups, in the order --help lists them after the subcommand's own
    options (empty groups are left out): inputs, outputs, compute, then the common options."""
    for title in ("inputs", "outputs", "compute"):
        parser.add_argument_group(title)
    add_common_options(parser)


def groups(parser: argparse.ArgumentParser) -> tuple:
    """The (inputs, outputs, compute) argument groups that `add_groups` made."""
    # argparse keeps a parser's groups only in this attribute (stable since Python 2.7).
    by_title = {group.title: group for group in parser._action_groups}
    return by_title["inputs"], by_title["outputs"], by_title["compute"]


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Options every command accepts (before or after the subcommand name)."""
    common = parser.add_argument_group("common options")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="only errors on stderr, no progress bars")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and debug logs")


# -- inputs -------------------------------------------------------------------------------------


def add_fasta(group, *, required: bool = True) -> None:
    group.add_argument("--fasta", required=required, default=None,
                       help="reference FASTA (plain or bgzip; .fai built if missing); `sample`: the "
                            "bundled sample genome")


def add_model(group) -> None:
    group.add_argument("--model", default=None,
                       help="checkpoint directory (default: the model bundled with genossm)")


# -- what is computed (in a subcommand's own options) -------------------------------------------


def add_window(group) -> None:
    group.add_argument("--window", type=int, default=None,
                       help="window length in bases (default: the model's max_length, at most 2048)")


def add_no_rc(group) -> None:
    group.add_argument("--no-rc", dest="both_strands", action="store_false",
                       help="forward strand only (default: average both strands)")


# -- compute ------------------------------------------------------------------------------------


def add_device(group) -> None:
    group.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")


def add_threads(group) -> None:
    group.add_argument("--threads", type=int, default=None, help="CPU threads for torch")


def add_batch_size(group) -> None:
    group.add_argument("--batch-size", type=int, default=16, help="windows per model call (default 16)")


def add_ranks(group) -> None:
    """--devices and --num-nodes of a job sharded over ranks (`genossm.infer.ranks`)."""
    group.add_argument("--devices", type=int, default=1,
                       help="devices (GPUs, or CPU processes) per node to shard the work over; rank 0 "
                            "writes the output, the same bytes as one device (default 1)")
    group.add_argument("--num-nodes", type=int, default=1,
                       help="nodes, each started by torchrun or srun (default 1; docs/distributed.md)")


def compute_from(args: argparse.Namespace):
    """The `genossm.infer.ranks.Compute` of parsed --device, --threads, --devices, --num-nodes."""
    from genossm.infer.ranks import Compute

    return Compute(device=args.device, threads=args.threads, devices=getattr(args, "devices", 1),
                   num_nodes=getattr(args, "num_nodes", 1))


# -- provenance ---------------------------------------------------------------------------------


def command_line(name: str, args: argparse.Namespace, *, positional: tuple[str, ...] = ()) -> str:
    """A canonical command line for output headers, rebuilt from parsed arguments.

    Rebuilt rather than copied from sys.argv so that it does not depend on how genossm was
    called, and without the options that cannot change the result (`_NOT_IN_HEADERS`).
    """
    words = ["genossm", name, *(str(getattr(args, key)) for key in positional)]
    for key, value in sorted(vars(args).items()):
        if key in _NEGATED:
            words += [] if value else [_NEGATED[key]]
            continue
        if key in _NOT_IN_HEADERS or key in positional or value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            words.append(flag)
        elif isinstance(value, (list, tuple)):
            words += [flag, *map(str, value)]
        else:
            words += [flag, str(value)]
    return shlex.join(words)
