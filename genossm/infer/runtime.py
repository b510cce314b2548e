"""What every inference command sets up: device, threads, the model and its identity."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from genossm.errors import InputError, UsageError

log = logging.getLogger("genossm.infer.runtime")


def default_model_path() -> Path:
    """The model bundled with the package (`genossm/resources/model`)."""
    from genossm.resources import RESOURCES

    return RESOURCES / "model"


def resolve_device(spec: str = "auto"):
    """`auto` (CUDA when present, else CPU), `cpu`, `cuda` or `cuda:N` -> torch.device."""
    import torch

    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UsageError(f"--device {spec!r} is not a device; expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {spec}: no CUDA device is available here; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) "
                             f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
    elif device.type != "cpu":
        raise UsageError(f"--device {spec!r}: expected auto, cpu, cuda or cuda:N")
    return device


def set_threads(threads: int | None) -> None:
    """Intra-op CPU threads for torch (None: torch's default)."""
    if threads is None:
        return
    if threads < 1:
        raise UsageError(f"--threads must be at least 1, got {threads}")
    import torch

    torch.set_num_threads(threads)


def load_inference_model(path: str | os.PathLike | None, device):
    """(model in eval mode on `device`, checkpoint path as a string, weights sha256)."""
    from genossm.models.checkpoint import checkpoint_sha256, load_model

    path = Path(path) if path is not None else default_model_path()
    if not (path / "config.json").is_file():
        hint = (" (the bundled model is missing from this installation)" if path == default_model_path()
                else "; expected a directory with config.json and model.safetensors")
        raise InputError(f"not a genossm checkpoint directory{hint}", path=path)
    from genossm.models.vocab import inference_view

    # A converted model keeps its peer's token ids; the pipelines speak genossm's (models/vocab.py).
    model = inference_view(load_model(path, device=device))
    model.eval()
    return model, os.fspath(path), checkpoint_sha256(path)


def command_line(name: str, args, *, positional: tuple[str, ...] = (),
                 negated: dict[str, str] | None = None) -> str:
    """A canonical command line for output headers, rebuilt from parsed arguments.

    Rebuilt rather than copied from sys.argv so that it does not depend on how genossm was called,
    and without the options that cannot change the result (`--resume`, `-q`, `--debug`,
    `--threads`, `--device`, `--batch-size`, `--devices`, `--num-nodes`), so a resumed run, or one
    sharded over several devices, writes the same bytes as an uninterrupted one-device run.
    """
    import shlex

    ignored = {"func", "command", "resume", "quiet", "debug", "threads", "device", "batch_size", "devices",
               "num_nodes", *positional}
    negated = negated or {}
    words = ["genossm", name, *(str(getattr(args, key)) for key in positional)]
    for key, value in sorted(vars(args).items()):
        if key in negated:
            words += [] if value else [negated[key]]
            continue
        if key in ignored or value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            words.append(flag)
        elif isinstance(value, (list, tuple)):
            words += [flag, *map(str, value)]
        else:
            words += [flag, str(value)]
    return shlex.join(words)


SAMPLE_KEYWORD = "sample"
_SAMPLE_FILES = {"fasta": "sample/sample_genome.fa.gz", "vcf": "sample/sample.vcf"}


def sample_or_path(value: str, kind: str) -> str:
    """`sample` (when no file of that name exists) names the bundled sample genome or VCF.

    So that `genossm score sample --fasta sample` runs out of the box after `pip install`.
    """
    if value != SAMPLE_KEYWORD or os.path.exists(value):
        return value
    from genossm.resources import RESOURCES

    path = RESOURCES / _SAMPLE_FILES[kind]
    if not path.exists():
        raise InputError(f"the bundled sample {kind} is missing from this installation", path=path)
    log.info("using the bundled sample %s %s", kind, path)
    return os.fspath(path)
