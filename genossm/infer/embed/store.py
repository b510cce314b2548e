"""The HDF5 file of `genossm embed`: its layout, the partial file of a run, resume, and merge.

File layout (one HDF5 file):
    /embeddings                (n_regions, d_model) float32: mean over the region's positions
    /per_position/<i>          (length_i, d_model) float32, with per_position=True; `<i>` is the
                               region's 0-based row in /embeddings (names may hold `/`)
    /regions/chrom, start, end, name, strand
                               one dataset per column (strings as UTF-8), start 0-based, end
                               exclusive, as in BED
    attributes                 model, model_sha256, pooling ("mean"), strands, genossm_version,
                               command, max_pass_length

Resume: rows are written to `.<out>.partial.h5` beside the output as they finish, with the count
of finished regions in its `completed` attribute. A rerun with `resume=True` continues after them,
if its fingerprint matches: the regions, settings, model and a digest of the regions' sequences in
the FASTA (`sequence_digest`), so a FASTA or BED changed under the same name is refused. The
partial file is created exclusively and never opened through a symlink.
At the end the final file is written in one deterministic pass from the partial one (the same
bytes whether or not the run was interrupted) and the partial file is removed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from genossm import __version__
from genossm.atomic import atomic_path, check_output_path, create_exclusive
from genossm.errors import InputError, UsageError
from genossm.infer.embed.embedder import EmbedSettings
from genossm.io.intervals import Region
from genossm.progress import progress

log = logging.getLogger("genossm.infer.embed")

REGION_COLUMNS = ("chrom", "start", "end", "name", "strand")


def partial_path(output: str | os.PathLike) -> Path:
    output = Path(output)
    return output.with_name(f".{output.name}.partial.h5")


class EmbeddingWriter:
    """The output of one run, as a context manager: rows go to the partial file as they finish
    (`write`), and on success the final file is written from it and the partial file removed;
    after an error the partial file stays, for `resume`.

    `completed` regions were embedded by an interrupted run (resume); `computed` counts the rows
    written by this one. `attributes` (model, model_sha256, command) complete the file's
    attributes; the partial file is only resumed with the same regions, attributes and settings.
    """

    def __init__(self, output: str | os.PathLike, regions: list[Region], settings: EmbedSettings, *,
                 d_model: int, attributes: dict | None = None, resume: bool = False, input_digest: str = ""):
        self.output, self.regions, self.settings = output, regions, settings
        self.attributes = {"model": "", "model_sha256": "", "pooling": "mean",
                           "strands": "forward,reverse" if settings.both_strands else "forward",
                           "genossm_version": __version__, "max_pass_length": settings.max_pass_length,
                           **(attributes or {})}
        self.partial = partial_path(output)
        fingerprint = repr((sorted(self.attributes.items()), [_region_row(r) for r in regions], settings,
                            input_digest))
        self.completed = _open_partial(self.partial, fingerprint, resume, len(regions), d_model,
                                       settings.per_position)
        self.computed = 0

    def __enter__(self) -> EmbeddingWriter:
        import h5py

        _refuse_symlink(self.partial)
        self._store = h5py.File(self.partial, "a")
        self._bar = progress(total=sum(r.length for r in self.regions), desc="embedding", unit="bp")
        self._bar.update(sum(r.length for r in self.regions[:self.completed]))
        return self

    def write(self, index: int, mean: np.ndarray, per_position: np.ndarray | None) -> None:
        """Row `index`: its mean embedding (D,) and, with per_position, its (L, D) embeddings."""
        self._store["embeddings"][index] = mean
        if self.settings.per_position:
            self._store["per_position"].create_dataset(str(index), data=per_position)
        self._store.attrs["completed"] = index + 1
        self._store.flush()
        self.computed += 1
        self._bar.update(self.regions[index].length)

    def __exit__(self, failure, *_) -> None:
        self._bar.close()
        self._store.close()
        if failure is None:
            write_embedding_file(self.output, [self.partial], self.regions, self.attributes)
            self.partial.unlink()


def _open_partial(path: Path, fingerprint: str, resume: bool, n_regions: int, d_model: int,
                  per_position: bool) -> int:
    """Create (or, resuming, check) the partial file; returns the number of finished regions."""
    import h5py

    if resume and os.path.lexists(path):
        _refuse_symlink(path)
        with h5py.File(path, "r") as store:
            if store.attrs.get("fingerprint") != fingerprint:
                raise InputError("this partial file was written with other regions, FASTA sequence, model or "
                                 "options; delete it or drop --resume to start over, or rerun with the "
                                 "original options", path=path)
            completed = int(store.attrs["completed"])
        log.info("resuming: %d of %d regions already embedded", completed, n_regions)
        return completed
    create_exclusive(path, "wb").close()  # a planted file or symlink is replaced, never followed
    with h5py.File(path, "r+") as store:
        store.create_dataset("embeddings", shape=(n_regions, d_model), dtype="float32")
        if per_position:
            store.create_group("per_position")
        store.attrs["fingerprint"] = fingerprint
        store.attrs["completed"] = 0
    return 0


def _refuse_symlink(path: Path) -> None:
    if path.is_symlink():
        raise InputError("the partial file is a symlink, which genossm never writes through; delete it "
                         "or drop --resume to start over", path=path)


def sequence_digest(genome, regions: list[Region]) -> str:
    """A digest of the regions' sequences, for the resume fingerprint (reads each region once)."""
    import hashlib

    digest = hashlib.sha256()
    for region in regions:
        digest.update(genome.fetch(region.contig, region.start, region.end).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:32]


def check_embedding_output(output: str | os.PathLike, inputs: tuple = ()) -> None:
    """Usage errors of an embedding file's path, before any work (HDF5 cannot go to stdout)."""
    if os.fspath(output) == "-":
        raise UsageError("-o -: an HDF5 file cannot be written to stdout (it needs a seekable file); "
                         "give -o FILE.h5")
    check_output_path(output, "-o", inputs=inputs)


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
    check_embedding_output(output, inputs=tuple(inputs))
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
