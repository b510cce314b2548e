"""What every inference job sets up: device, threads, the model and its identity, bundled files."""

from __future__ import annotations

import contextlib
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
    check_threads(threads)
    if threads is None:
        return
    import torch

    torch.set_num_threads(threads)


@contextlib.contextmanager
def torch_threads(threads: int):
    """Torch's intra-op thread count set to `threads` inside the block, restored after it."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def check_threads(threads: int | None) -> None:
    if threads is not None and threads < 1:
        raise UsageError(f"--threads must be at least 1, got {threads}")


def checkpoint_dir(path: str | os.PathLike | None) -> Path:
    """The checkpoint directory to load (None: the bundled model), checked to be one."""
    path = Path(path) if path is not None else default_model_path()
    if not (path / "config.json").is_file():
        hint = (" (the bundled model is missing from this installation)" if path == default_model_path()
                else "; expected a directory with config.json and model.safetensors")
        raise InputError(f"not a genossm checkpoint directory{hint}", path=path)
    return path


def read_model_config(path: Path):
    """The `ModelConfig` of a checkpoint directory, read without its weights: options that
    depend on the model (the default window) are checked before any weights are loaded."""
    from genossm.models.checkpoint import CONFIG_FILE, read_checkpoint_config
    from genossm.models.config import ModelConfig

    return ModelConfig.from_dict(read_checkpoint_config(path)["model"], source=path / CONFIG_FILE)


def load_inference_model(path: Path, device):
    """(model in eval mode on `device`, SHA-256 of its weights), hashing the weights once.

    `load_model` checks the weights file against the SHA-256 that config.json records, so that
    recorded value is the file's; only a checkpoint that records none is hashed here.
    """
    from genossm.models.checkpoint import checkpoint_sha256, load_model, read_checkpoint_config
    from genossm.models.vocab import inference_view

    # A converted model keeps its peer's token ids; the pipelines speak genossm's (models/vocab.py).
    model = inference_view(load_model(path, device=device))
    model.eval()  # the view is a new module: eval mode for it too
    recorded = read_checkpoint_config(path).get("weights", {}).get("sha256")
    return model, recorded or checkpoint_sha256(path)


SAMPLE_KEYWORD = "sample"
_SAMPLE_FILES = {"fasta": "sample/sample_genome.fa.gz", "vcf": "sample/sample.vcf"}
# `sample_phased` (a VCF input): the sample VCF with 4 synthetic phased samples (score --samples).
PHASED_SAMPLE_KEYWORD, _PHASED_SAMPLE_FILE = "sample_phased", "sample/sample_phased.vcf"


def sample_or_path(value: str, kind: str) -> str:
    """`sample` (when no file of that name exists) names the bundled sample genome or VCF, and
    `sample_phased` the bundled VCF with 4 phased samples (a VCF input only).

    So that `genossm score sample --fasta sample` runs out of the box after `pip install`.
    """
    phased = value == PHASED_SAMPLE_KEYWORD and kind == "vcf"
    if (value != SAMPLE_KEYWORD and not phased) or os.path.exists(value):
        return value
    from genossm.resources import RESOURCES

    path = RESOURCES / (_PHASED_SAMPLE_FILE if phased else _SAMPLE_FILES[kind])
    if not path.exists():
        raise InputError(f"the bundled sample {kind} is missing from this installation", path=path)
    log.info("using the bundled sample %s %s", kind, path)
    return os.fspath(path)
