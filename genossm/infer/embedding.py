"""Region embeddings to HDF5 (`genossm embed`), resumable, and the merge of several such files.

File layout (one HDF5 file):
    /embeddings                (n_regions, d_model) float32: mean over the region's positions
    /per_position/<i>          (length_i, d_model) float32, with per_position=True; `<i>` is the
                               region's 0-based row in /embeddings (names may hold `/`)
    /regions/chrom, start, end, name, strand
                               one dataset per column (strings as UTF-8), start 0-based, end
                               exclusive, as in BED
    attributes                 model, model_sha256, pooling ("mean"), strands, genossm_version,
                               command, max_pass_length
Strand '-' regions embed the reverse complement of the region, so their per-position rows run
5'->3' on the minus strand. With both strands (the default) the per-position embedding is the
mean of the forward pass and of the pass over the reverse complement, flipped back so that row j
is the same base in both: the pooled mean is then the mean over both strands.

A region longer than `max_pass_length` goes through `model.forward_chunked`, which gives the same
numbers as one pass, in bounded memory.

Resume: rows are written to `.<out>.partial.h5` beside the output as they finish, with the count
of finished regions in its `completed` attribute. A rerun with `resume=True` continues after them.
At the end the final file is written in one deterministic pass from the partial one (the same
bytes whether or not the run was interrupted) and the partial file is removed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genossm import __version__
from genossm.atomic import atomic_path
from genossm.errors import InputError, UsageError
from genossm.io.intervals import Region
from genossm.progress import progress
from genossm.tokenizer import reverse_complement_tokens

log = logging.getLogger("genossm.infer.embedding")

REGION_COLUMNS = ("chrom", "start", "end", "name", "strand")


@dataclass(frozen=True)
class EmbedSettings:
    both_strands: bool = True
    per_position: bool = False
    max_pass_length: int = 65536


@torch.no_grad()
def embed_tokens(model, tokens: np.ndarray, settings: EmbedSettings, device) -> torch.Tensor:
    """Per-position embeddings of one sequence: (L,) uint8 -> (L, d_model) float32 on CPU."""
    hidden = _embed_one_strand(model, tokens, settings.max_pass_length, device)
    if settings.both_strands:
        reverse = _embed_one_strand(model, reverse_complement_tokens(tokens), settings.max_pass_length, device)
        hidden = (hidden + reverse.flip(0)) / 2  # row j of the flipped pass is base j again
    return hidden


def _embed_one_strand(model, tokens: np.ndarray, max_pass_length: int, device) -> torch.Tensor:
    batch = torch.from_numpy(np.ascontiguousarray(tokens).astype(np.int64))[None].to(device)  # (1, L)
    if batch.shape[1] <= max_pass_length:
        _, hidden = model(batch, return_embeddings=True)
    else:
        _, hidden = model.forward_chunked(batch, max_pass_length, return_embeddings=True)
    return hidden[0].float().cpu()  # (L, D)


def region_tokens(genome, region: Region) -> np.ndarray:
    tokens = genome.fetch_tokens(region.contig, region.start, region.end)
    return reverse_complement_tokens(tokens) if region.strand == "-" else tokens


def partial_path(output: str | os.PathLike) -> Path:
    output = Path(output)
    return output.with_name(f".{output.name}.partial.h5")


def embed_region(model, genome, region: Region, settings: EmbedSettings, device):
    """(mean embedding (D,), per-position embeddings (L, D) or None) of one region, float32 numpy."""
    hidden = embed_tokens(model, region_tokens(genome, region), settings, device)  # (L, D)
    return hidden.mean(0).numpy(), hidden.numpy() if settings.per_position else None


def check_embed_inputs(regions: list[Region], settings: EmbedSettings) -> None:
    if settings.max_pass_length < 1:
        raise UsageError(f"--max-pass-length must be at least 1, got {settings.max_pass_length}")
    if any(region.length == 0 for region in regions):
        empty = next(region for region in regions if region.length == 0)
        raise InputError(f"region {empty} is empty: an embedding needs at least one base",
                         path=empty.source, line=empty.line)


def run_embed(regions: list[Region], genome, model, settings: EmbedSettings, output: str | os.PathLike, *,
              device="cpu", attributes: dict | None = None, resume: bool = False, region_runner=None) -> int:
    """Embed `regions` into the HDF5 file `output`; returns the number of regions computed now.

    `region_runner(items, embed)`, given (index, region) pairs and the function that embeds one
    region, yields (index, region, embed(region)) in input order; the default embeds each region
    here, `genossm.infer.sharded.ShardedRunner` spreads the regions over ranks.
    """
    import h5py

    if not regions:
        log.warning("no regions to embed: writing a file with no rows")
    check_embed_inputs(regions, settings)
    d_model = _embedding_width(model, device)
    attributes = {"model": "", "model_sha256": "", "pooling": "mean",
                  "strands": "forward,reverse" if settings.both_strands else "forward",
                  "genossm_version": __version__, "max_pass_length": settings.max_pass_length,
                  **(attributes or {})}
    fingerprint = repr((sorted(attributes.items()), [_region_row(r) for r in regions], settings))
    partial = partial_path(output)
    completed = _open_partial(partial, fingerprint, resume, len(regions), d_model, settings.per_position)
    computed = 0
    with h5py.File(partial, "a") as store, \
            progress(total=sum(r.length for r in regions), desc="embedding", unit="bp") as bar:
        bar.update(sum(r.length for r in regions[:completed]))
        pending = ((index, regions[index]) for index in range(completed, len(regions)))
        embed = lambda region: embed_region(model, genome, region, settings, device)  # noqa: E731
        embedded = (region_runner(pending, embed) if region_runner is not None
                    else ((index, region, embed(region)) for index, region in pending))
        for index, region, (mean, per_position) in embedded:
            store["embeddings"][index] = mean
            if settings.per_position:
                store["per_position"].create_dataset(str(index), data=per_position)
            store.attrs["completed"] = index + 1
            store.flush()
            computed += 1
            bar.update(region.length)
    write_embedding_file(output, [partial], regions, attributes)
    partial.unlink()
    return computed


def _embedding_width(model, device) -> int:
    with torch.no_grad():
        _, hidden = model(torch.zeros(1, 2, dtype=torch.long, device=device), return_embeddings=True)
    return int(hidden.shape[-1])


def _open_partial(path: Path, fingerprint: str, resume: bool, n_regions: int, d_model: int,
                  per_position: bool) -> int:
    """Create (or, resuming, check) the partial file; returns the number of finished regions."""
    import h5py

    if resume and path.exists():
        with h5py.File(path, "r") as store:
            if store.attrs.get("fingerprint") != fingerprint:
                raise InputError("this partial file was written with other regions, model or options; "
                                 "delete it to start over, or rerun with the original options", path=path)
            completed = int(store.attrs["completed"])
        log.info("resuming: %d of %d regions already embedded", completed, n_regions)
        return completed
    with h5py.File(path, "w") as store:
        store.create_dataset("embeddings", shape=(n_regions, d_model), dtype="float32")
        if per_position:
            store.create_group("per_position")
        store.attrs["fingerprint"] = fingerprint
        store.attrs["completed"] = 0
    return 0


def _region_row(region: Region) -> tuple:
    return (region.contig, region.start, region.end, region.name, region.strand)


def write_embedding_file(output: str | os.PathLike, sources: list[Path], regions: list[Region],
                         attributes: dict) -> None:
    """Write the final file from one or more complete partial/final files, rows in order.

    One writer for every final file (a run, a resumed run, a merge): same contents, same bytes.
    """
    import h5py

    with atomic_path(output) as tmp, h5py.File(tmp, "w") as out:
        tables = [h5py.File(source, "r") for source in sources]
        try:
            embeddings = np.concatenate([t["embeddings"][()] for t in tables]).astype(np.float32)
            if len(embeddings) != len(regions):
                raise InputError(f"{len(embeddings)} embeddings for {len(regions)} regions", path=output)
            out.create_dataset("embeddings", data=embeddings)
            if all("per_position" in t for t in tables):
                group = out.create_group("per_position")
                row = 0
                for table in tables:
                    for local in range(len(table["embeddings"])):
                        group.create_dataset(str(row), data=table["per_position"][str(local)][()])
                        row += 1
        finally:
            for table in tables:
                table.close()
        columns = out.create_group("regions")
        string = h5py.string_dtype("utf-8")
        rows = [_region_row(r) for r in regions]
        columns.create_dataset("chrom", data=np.array([r[0] for r in rows], dtype=object), dtype=string)
        columns.create_dataset("start", data=np.array([r[1] for r in rows], dtype=np.int64))
        columns.create_dataset("end", data=np.array([r[2] for r in rows], dtype=np.int64))
        columns.create_dataset("name", data=np.array([r[3] for r in rows], dtype=object), dtype=string)
        columns.create_dataset("strand", data=np.array([r[4] for r in rows], dtype=object), dtype=string)
        for key, value in sorted(attributes.items()):
            out.attrs[key] = value


def read_regions_table(path: str | os.PathLike) -> list[Region]:
    """The /regions table of an embedding file, as Regions."""
    import h5py

    with h5py.File(path, "r") as store:
        table = store["regions"]
        columns = {name: table[name][()] for name in REGION_COLUMNS}
    decode = lambda v: v.decode() if isinstance(v, bytes) else str(v)  # noqa: E731
    return [Region(decode(c), int(s), int(e), decode(n), decode(st))
            for c, s, e, n, st in zip(*(columns[name] for name in REGION_COLUMNS))]


def merge_embedding_files(inputs: list[str | os.PathLike], output: str | os.PathLike) -> None:
    """Concatenate embedding files (e.g. the chunks of a pipeline) in the order given.

    Attributes come from the first file; files made with another model or pooling are refused.
    """
    import h5py

    if not inputs:
        raise UsageError("nothing to merge: give at least one embedding file")
    regions, attributes = [], None
    for path in inputs:
        with h5py.File(path, "r") as store:
            these = {key: store.attrs[key] for key in store.attrs}
        keys = ("model_sha256", "pooling", "strands")
        if attributes is not None and any(str(these.get(k)) != str(attributes.get(k)) for k in keys):
            raise InputError(f"made with another model or pooling than {inputs[0]}; cannot merge", path=path)
        attributes = attributes or these
        regions.extend(read_regions_table(path))
    write_embedding_file(output, [Path(p) for p in inputs], regions, attributes)
