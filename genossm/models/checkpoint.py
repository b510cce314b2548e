"""Model checkpoints: a directory with `config.json` and `model.safetensors`.

    config.json   {"format": "genossm-checkpoint", "format_version": 1, "genossm_version": ...,
                   "model": ModelConfig.to_dict(), "tokenizer": {"vocab": [...], ...},
                   "weights": {"file": "model.safetensors", "sha256": ...},
                   "training": {...}}      (whatever the trainer recorded; {} when none)
    model.safetensors

Loading never executes code from a file: weights are safetensors, the config is JSON, and
Lightning `.ckpt` files are read with `torch.load(weights_only=True)`. A checkpoint is written to
a temporary directory beside the target and renamed into place, so a crash never leaves a
half-written checkpoint under the final name.

A model directory may come from a stranger, so loading checks it before building anything:
config.json is at most `MAX_CONFIG_BYTES` and `MAX_CONFIG_DEPTH` levels deep; the weights file it
names is a plain file inside the directory; and the model the config describes (its layer count
first, then every tensor's name, shape and dtype, from a build on torch's `meta` device, which
allocates nothing) must match the safetensors header. So a hostile or corrupted directory cannot
make genossm allocate memory its weights do not account for, or loop building layers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from genossm.atomic import replace_directory
from genossm.errors import InputError

log = logging.getLogger("genossm.models.checkpoint")

MAX_CONFIG_BYTES = 16 << 20  # real configs are a few kB (a converted model's original config included)
MAX_CONFIG_DEPTH = 32  # real configs nest 4 levels
FORMAT = "genossm-checkpoint"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def _tokenizer_record(config=None) -> dict[str, Any]:
    """config.json's "tokenizer": the model's vocabulary in id order (specials included), the ids
    of its mask, pad and unknown tokens, and the tokens appended to every sequence. A copy for
    readers: the model config's `tokenizer` section is what genossm loads."""
    from genossm import tokenizer

    if config is not None and not config.tokenizer.vocabulary().is_default:
        vocabulary = config.tokenizer.vocabulary()
        return {
            "name": "character",
            "vocab": list(vocabulary.tokens),
            "mask_id": vocabulary.mask_id,
            "pad_id": vocabulary.pad_id,
            "unknown_id": vocabulary.unknown_id,
            "append": list(vocabulary.append),
        }
    return {
        "name": "single-nucleotide",
        "vocab": list(tokenizer.VOCAB),
        "mask_id": tokenizer.MASK,
        "pad_id": tokenizer.PAD,
        "unknown_id": tokenizer.N,
    }


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a checkpoint's weights file (`path`: the directory or the .safetensors file)."""
    path = Path(path)
    weights = path / WEIGHTS_FILE if path.is_dir() else path
    if not weights.is_file():
        raise InputError(f"no weights file {WEIGHTS_FILE} in the checkpoint", path=path)
    return sha256_file(weights)


# ---------------------------------------------------------------------------------------- save
WEIGHTS_DTYPES = ("float32", "float16", "bfloat16")


def save_model(model, directory: str | os.PathLike, extra: dict[str, Any] | None = None,
               weights_dtype: str | None = None, provenance: dict[str, Any] | None = None) -> Path:
    """Write `model` (a DNALanguageModel) as a checkpoint directory; returns its path.

    `extra` is the training record (JSON-serialisable: step, data, recipe...). An existing
    checkpoint directory at `directory` is replaced; any other non-empty directory is refused.
    `weights_dtype` ("float16", "bfloat16", "float32"; None keeps the model's) stores floating
    tensors in that dtype: half the file for a shipped model. `load_model` builds the model in
    float32 whatever the stored dtype, so only the stored values are rounded, never the compute.
    `provenance` (JSON-serialisable): where a converted model came from (`genossm.models.published`),
    stored as config.json's "provenance".
    """
    import torch
    from safetensors.torch import save_file

    import genossm

    directory = Path(directory)
    if directory.exists() and not _replaceable(directory):
        raise InputError(
            "directory exists and is not a genossm checkpoint; choose a new or empty directory",
            path=directory,
        )
    training = dict(extra or {})
    try:
        json.dumps(training)
    except TypeError as err:
        raise InputError(f"training record is not JSON-serialisable: {err}") from None

    directory.parent.mkdir(parents=True, exist_ok=True)
    # A fresh name (mkdtemp: created exclusively), so nothing planted beside the target is followed.
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    umask = os.umask(0o022)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp's 0700 would make the checkpoint private
    try:
        if weights_dtype is not None and weights_dtype not in WEIGHTS_DTYPES:
            raise InputError(f"weights dtype {weights_dtype!r}: expected one of {', '.join(WEIGHTS_DTYPES)}")
        cast = None if weights_dtype is None else getattr(torch, weights_dtype)
        tensors = {name: t.detach().to("cpu").contiguous() for name, t in model.state_dict().items()}
        if cast is not None:
            tensors = {name: t.to(cast) if t.is_floating_point() else t for name, t in tensors.items()}
        stored = sorted({str(t.dtype).removeprefix("torch.") for t in tensors.values() if t.is_floating_point()})
        save_file(tensors, tmp / WEIGHTS_FILE, metadata={"format": FORMAT})
        record = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "genossm_version": genossm.__version__,
            "model": model.config.to_dict(),
            "tokenizer": _tokenizer_record(model.config),
            "weights": {"file": WEIGHTS_FILE, "sha256": sha256_file(tmp / WEIGHTS_FILE),
                        "dtype": ",".join(stored)},
            "training": training,
        }
        if provenance:
            record["provenance"] = provenance
        (tmp / CONFIG_FILE).write_text(json.dumps(record, indent=2) + "\n")
        replace_directory(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("saved checkpoint %s", directory)
    return directory


def _replaceable(directory: Path) -> bool:
    if not directory.is_dir():
        return False
    names = {p.name for p in directory.iterdir()}
    return names <= {CONFIG_FILE, WEIGHTS_FILE}


# ---------------------------------------------------------------------------------------- load
def read_checkpoint_config(path: str | os.PathLike) -> dict[str, Any]:
    """The parsed, format-checked `config.json` of a checkpoint directory."""
    path = Path(path)
    if not path.exists():
        raise InputError("checkpoint not found", path=path)
    if path.is_file():
        hint = ""
        if path.suffix == ".ckpt":
            hint = "; convert a Lightning .ckpt with `genossm convert IN.ckpt OUT_DIR`"
        raise InputError(
            f"expected a checkpoint directory ({CONFIG_FILE} + {WEIGHTS_FILE}), found a file{hint}", path=path
        )
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        raise InputError(f"not a genossm checkpoint: {CONFIG_FILE} is missing", path=path)
    if config_path.stat().st_size > MAX_CONFIG_BYTES:
        raise InputError(f"checkpoint config is {config_path.stat().st_size:,} bytes, more than any genossm "
                         f"config ({MAX_CONFIG_BYTES:,}); refusing to read it", path=config_path)
    try:
        text = config_path.read_text(encoding="utf-8")
        check_json_depth(text, config_path)
        record = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise InputError(f"corrupt checkpoint config (not valid JSON: {err})", path=config_path) from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise InputError(f"not a genossm checkpoint config (expected \"format\": \"{FORMAT}\")", path=config_path)
    version = record.get("format_version")
    if not isinstance(version, int):
        raise InputError("checkpoint config has no integer format_version", path=config_path)
    if version > FORMAT_VERSION:
        raise InputError(
            f"checkpoint format_version {version} is newer than this genossm reads ({FORMAT_VERSION}, "
            f"genossm {_version()}); upgrade genossm (it was written by genossm "
            f"{record.get('genossm_version', '?')})",
            path=config_path,
        )
    if not isinstance(record.get("model"), dict):
        raise InputError("checkpoint config has no \"model\" section", path=config_path)
    return record


def check_json_depth(text: str, source, limit: int = MAX_CONFIG_DEPTH) -> None:
    """Refuse JSON nested deeper than `limit` (Python's parser would recurse until it fails)."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                raise InputError(f"checkpoint config is nested more than {limit} levels deep; not a genossm "
                                 "config", path=source)
        elif char in "]}":
            depth -= 1


def _open_checkpoint(path: Path):
    """(config.json record, ModelConfig, weights file path) of a checkpoint directory; a missing
    weights file, or one outside the directory, is an InputError."""
    from genossm.models.config import ModelConfig

    record = read_checkpoint_config(path)
    config = ModelConfig.from_dict(record["model"], source=path / CONFIG_FILE)
    weights_record = record.get("weights", {})
    name = weights_record.get("file", WEIGHTS_FILE) if isinstance(weights_record, dict) else None
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise InputError(f"config.json names the weights file {name!r}; it must be a file name inside the "
                         "checkpoint directory", path=path / CONFIG_FILE)
    weights = path / name
    if weights.is_symlink() and weights.resolve().parent != path.resolve():
        raise InputError(f"the weights file {name} is a link to {weights.resolve()}, outside the checkpoint "
                         "directory; copy the file into it", path=path)
    if not weights.is_file():
        raise InputError(f"checkpoint weights file {weights.name} is missing", path=path)
    return record, config, weights


_SAFETENSORS_FLOATS = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}
_SAFETENSORS_DTYPES = {"F64": "float64", "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
                       "U8": "uint8", "BOOL": "bool", **_SAFETENSORS_FLOATS}


def weights_header(weights: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{tensor name: (dtype as torch names it, shape)} from a safetensors file's header only."""
    try:
        with open(weights, "rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            if size <= 0 or size > min(100 << 20, weights.stat().st_size - 8):
                raise ValueError(f"header length {size} does not fit the file")
            header = json.loads(handle.read(size))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as err:
        raise InputError(f"corrupt weights file (unreadable safetensors header: {err})", path=weights) from None
    if not isinstance(header, dict):
        raise InputError("corrupt weights file (safetensors header is not a mapping)", path=weights)
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("shape"), list):
            raise InputError(f"corrupt weights file (no shape for {name!r} in its header)", path=weights)
        tensors[name] = (_SAFETENSORS_DTYPES.get(entry.get("dtype"), str(entry.get("dtype"))),
                         tuple(int(size) for size in entry["shape"]))
    return tensors


def check_config_against_weights(config, weights: Path) -> None:
    """Refuse a config that does not describe the weights file, before the model is built.

    The layer count is compared first (a config with more layers than the weights hold is refused,
    so a hostile one cannot make genossm build a million layers); then the model is built on the meta device (no memory) and every tensor's name,
    shape and dtype is compared with the safetensors header.
    """
    import re

    import torch

    from genossm.models.lm import build_model

    header = weights_header(weights)
    layers = {int(match.group(1)) for name in header if (match := re.match(r"blocks\.(\d+)\.", name))}
    if config.n_layers > len(layers):
        raise InputError(f"config.json describes {config.n_layers} layers, the weights hold {len(layers)}; the "
                         "config and the weights come from different models", path=weights.parent)
    try:
        with torch.device("meta"):
            expected = {name: (str(t.dtype).removeprefix("torch."), tuple(t.shape))
                        for name, t in build_model(config).state_dict().items()}
    except (RuntimeError, ValueError, MemoryError) as err:
        raise InputError(f"config.json describes no buildable model ({err})", path=weights.parent / CONFIG_FILE) from None
    wrong_type = []
    for name in sorted(set(expected) & set(header)):
        model_dtype, stored_dtype = expected[name][0], header[name][0]
        floating = model_dtype in _SAFETENSORS_FLOATS.values()
        if (stored_dtype not in _SAFETENSORS_FLOATS.values()) if floating else stored_dtype != model_dtype:
            wrong_type.append(f"{name} {stored_dtype} (model: {model_dtype})")
    _check_weights_match({name: shape for name, (_, shape) in expected.items()},
                         {name: shape for name, (_, shape) in header.items()}, weights, wrong_type)


def _version() -> str:
    import genossm

    return genossm.__version__


def load_model(path: str | os.PathLike, device=None, dtype=None, verify: bool = True):
    """Load a checkpoint directory -> `DNALanguageModel` in eval mode.

    `device`/`dtype` move and cast the weights (e.g. `dtype=torch.bfloat16`); `verify` checks
    the weights file against the SHA-256 recorded in config.json, catching truncated copies.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from genossm.models.lm import build_model

    path = Path(path)
    record, config, weights = _open_checkpoint(path)
    expected = record.get("weights", {}).get("sha256")
    if verify and expected and sha256_file(weights) != expected:
        raise InputError(
            "weights file does not match the SHA-256 in config.json (corrupt or modified); copy the "
            "checkpoint again from its source (`genossm info DIR` shows both checksums)",
            path=weights,
        )
    check_config_against_weights(config, weights)
    try:
        state = load_file(weights, device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise InputError(f"corrupt weights file ({err})", path=weights) from None
    model = build_model(config)
    load_state_dict_checked(model, state, source=weights)
    model.to(device=device, dtype=dtype)
    model.eval()
    return model


def load_state_dict_checked(model, state: dict, source=None) -> None:
    """`model.load_state_dict(state)` that names missing, unexpected and misshapen tensors."""
    _check_weights_match({name: tuple(t.shape) for name, t in model.state_dict().items()},
                         {name: tuple(t.shape) for name, t in state.items()}, source)
    model.load_state_dict(state, strict=True)


def _check_weights_match(expected: dict, stored: dict, path, wrong_type: list | None = None) -> None:
    """InputError naming the tensors missing from, unexpected in or misshapen in `stored` (name ->
    shape) against the model's `expected`, and any dtype problems the caller found."""
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    misshapen = [f"{name} {stored[name]} (model: {expected[name]})"
                 for name in sorted(set(expected) & set(stored)) if expected[name] != stored[name]]
    problems = []
    if missing:
        problems.append(f"missing {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected {_listing(unexpected)}")
    if misshapen:
        problems.append(f"wrong shape {_listing(misshapen)}")
    if wrong_type:
        problems.append(f"wrong dtype {_listing(wrong_type)}")
    if problems:
        raise InputError("weights do not match the model config: " + "; ".join(problems)
                         + " (was the config edited, or the weights taken from another model?)", path=path)


def _listing(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# ---------------------------------------------------------------------------------------- describe
def describe_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Summary of a checkpoint without building the model (for `genossm info`).

    Keys: path, format_version, genossm_version, summary (one line), model (config dict),
    parameters (from the safetensors header), files ({name: bytes}), sha256, sha256_ok,
    training, tokenizer; calibration when `genossm calibrate` stored one (its config.json entry);
    for a converted model also source, source_sha256 and source_config (`describe_provenance`).
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    record, config, weights = _open_checkpoint(path)
    try:
        parameters = 0
        with safe_open(str(weights), framework="pt") as handle:
            for name in handle.keys():
                numel = 1
                for size in handle.get_slice(name).get_shape():
                    numel *= size
                parameters += numel
    except (SafetensorError, OSError) as err:
        raise InputError(f"corrupt weights file ({err})", path=weights) from None
    digest = sha256_file(weights)
    expected = record.get("weights", {}).get("sha256")
    return {
        "path": str(path),
        "format_version": record["format_version"],
        "genossm_version": record.get("genossm_version"),
        "summary": summarize_config(config, parameters),
        "model": config.to_dict(),
        "parameters": parameters,
        "files": {p.name: p.stat().st_size for p in sorted(path.iterdir()) if p.is_file()},
        "sha256": digest,
        "sha256_ok": None if expected is None else digest == expected,
        "training": record.get("training", {}),
        "tokenizer": record.get("tokenizer", {}),
        **({"calibration": record["calibration"]} if record.get("calibration") else {}),
        **describe_provenance(record.get("provenance")),
    }


def describe_provenance(provenance: dict[str, Any] | None) -> dict[str, Any]:
    """`describe_checkpoint`'s provenance keys of a converted model ({} for genossm's own):
    source (one line: project, variant, layout, weights file and its SHA-256), source_sha256,
    source_config (the peer's original config.json)."""
    if not provenance:
        return {}
    layout = {"huggingface": "Hugging Face layout", "lightning": "original Lightning layout"}.get(
        provenance.get("layout"), str(provenance.get("layout")))
    line = (f"converted from {provenance.get('project', '?')} ({provenance.get('variant', '?')}), {layout}, "
            f"{provenance.get('directory', '?')}/{provenance.get('weights_file', '?')}, "
            f"by {provenance.get('converted_by', '?')}")
    return {"source": line, "source_sha256": provenance.get("weights_sha256"),
            "source_config": provenance.get("original_config", {})}


def summarize_config(config, parameters: int | None = None) -> str:
    """One line, e.g. 'hyena, causal, d_model 256 x 8 layers, max_length 1,048,576, 6.55M parameters'."""
    kind = config.arch
    if config.bidirectional:
        kind = f"bidirectional {kind}"
    if config.rc_equivariant:
        kind += " (RC-equivariant)"
    text = (f"{kind}, {config.objective}, d_model {config.d_model} x {config.n_layers} layers, "
            f"max_length {config.max_length:,}")
    if parameters is not None:
        text += f", {parameters / 1e6:.2f}M parameters"
    return text


# ---------------------------------------------------------------------------------------- convert
def _unpickler_detail(message: str) -> str:
    """The informative part of torch.load's long weights_only error message: the blocked global
    when it names one, never its advice to load with weights_only=False (which would run the
    file's code)."""
    import re

    blocked = re.search(r"GLOBAL ([\w.]+)", message)
    if blocked:
        return f"it needs the global {blocked.group(1)}, which is not a tensor or plain container"
    marker = "WeightsUnpickler error:"
    detail = message.split(marker, 1)[1].strip().split("\n\n")[0] if marker in message else message
    lines = [line.strip() for line in detail.split("\n") if line.strip() and "weights_only" not in line]
    return (lines[0] if lines else "unreadable pickle").split(". Please use")[0].strip()


def read_lightning_checkpoint(ckpt_path: str | os.PathLike) -> dict[str, Any]:
    """A Lightning `.ckpt` read with `torch.load(weights_only=True)`; every failure is a one-line
    InputError (a hostile pickle names the global it was refused)."""
    import pickle

    import torch

    ckpt_path = Path(ckpt_path)
    if not ckpt_path.is_file():
        raise InputError("Lightning checkpoint not found", path=ckpt_path)
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        detail = _unpickler_detail(str(err))
        if "needs the global" in detail or "Unsupported global" in detail:
            raise InputError(
                f"refused to read the checkpoint: {detail}; genossm reads only tensors and plain "
                "containers from .ckpt files, so code in a file never runs (e.g. a config object "
                "instead of a dict in hyper_parameters)",
                path=ckpt_path,
            ) from None
        raise InputError(f"not a readable PyTorch/Lightning checkpoint ({detail})", path=ckpt_path) from None
    except (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError, TypeError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"not a readable PyTorch/Lightning checkpoint ({detail}); is it truncated or "
                         "corrupt?", path=ckpt_path) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise InputError("not a Lightning checkpoint: no 'state_dict' entry", path=ckpt_path)
    return ckpt


def convert_lightning_checkpoint(ckpt_path: str | os.PathLike, out_dir: str | os.PathLike,
                                 weights_dtype: str | None = None,
                                 training: dict[str, Any] | None = None) -> Path:
    """Lightning `.ckpt` (training state) -> checkpoint directory (model only), weights stored in
    `weights_dtype` (see `save_model`). The one converter: `genossm convert` and the export at
    the end of `genossm pretrain` both call it.

    Expects the LightningModule's model under attribute `model` (state dict keys `model.*`, or
    `model._orig_mod.*` when the model was torch.compile'd) and its config dict in
    `hyper_parameters["model_config"]`. `training` is the record written to config.json
    (default: the .ckpt's file name, epoch, step and JSON-serialisable hyper-parameters). Read
    with weights_only=True: a .ckpt that needs arbitrary classes to unpickle is refused rather
    than executed.
    """
    from genossm.models.config import ModelConfig
    from genossm.models.lm import build_model

    ckpt_path = Path(ckpt_path)
    ckpt = read_lightning_checkpoint(ckpt_path)
    model_config = (ckpt.get("hyper_parameters") or {}).get("model_config")
    if model_config is None:
        raise InputError(
            "Lightning checkpoint has no hyper_parameters['model_config'] (the model config dict "
            "genossm's trainer saves); was it written by genossm pretrain?",
            path=ckpt_path,
        )
    if isinstance(model_config, ModelConfig):
        config = model_config
    else:
        config = ModelConfig.from_dict(dict(model_config), source=ckpt_path)
    state = {}
    for name, tensor in ckpt["state_dict"].items():
        if name.startswith("model."):
            name = name[len("model."):]
            # torch.compile wraps the module: its keys carry `_orig_mod.`
            name = name.removeprefix("_orig_mod.")
            state[name] = tensor
    if not state:
        raise InputError("Lightning checkpoint holds no 'model.*' weights", path=ckpt_path)
    model = build_model(config)
    load_state_dict_checked(model, state, source=ckpt_path)
    if training is None:
        training = _lightning_training_record(ckpt_path, ckpt)
    return save_model(model, out_dir, extra=training, weights_dtype=weights_dtype)


def _lightning_training_record(ckpt_path: Path, ckpt: dict[str, Any]) -> dict[str, Any]:
    training = {
        "source": ckpt_path.name,
        "epoch": ckpt.get("epoch"),
        "global_step": ckpt.get("global_step"),
    }
    for key, value in (ckpt.get("hyper_parameters") or {}).items():
        if key == "model_config":
            continue
        try:
            json.dumps(value)
        except TypeError:
            continue
        training.setdefault("hyper_parameters", {})[key] = value
    return training
