"""What `genossm score` writes: the annotated VCF, TSV/Parquet side files, in input order.

`ScoreWriter` is the one writer of a run (the only process, or rank 0 of a sharded run): every
record comes out, in input order, with its original fields and, per ALT, one INFO field per
score of the run (`GENOSSM_LLR`, `GENOSSM_SITE`, ...: `--score`, `genossm.infer.score.definitions`)
and `GENOSSM_STATUS`, and the same values in one structured field, `GENOSSM`
(`Allele|<SCORES>|STATUS|Consequence` per ALT, e.g. `Allele|LLR|EMBDIST|STATUS|Consequence`, with
`PCT` after the scores when the model is calibrated,
comma-separated, as `bcftools +split-vep -a GENOSSM` reads it: a missing score is an empty
subfield, `|` in a breakend ALT is written `%7C`; Consequence is always empty, see
`info_fields`); header lines name the genossm version, the model, its
checksum, the scoring settings and the command line. Every file is written atomically: a reader
never sees a half-written file under the final name. With an output file, the scores of each
finished chunk also go to the resume log (`genossm.infer.score.resume_log`).
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import math
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from genossm import __version__
from genossm.atomic import atomic_path, check_output_path
from genossm.errors import InputError, UsageError
from genossm.infer.score.annotations import Annotations
from genossm.infer.score.definitions import DEFAULT_SCORES, description, info_field
from genossm.infer.score.resume_log import START_OVER, ResumeLog, chunk_digest, resume_log_path
from genossm.infer.score.rows import ScoreRow, score_row
from genossm.infer.score.settings import ScoreSettings
from genossm.io import vcf
from genossm.progress import PieceProgress, progress

log = logging.getLogger("genossm.infer.score")

def info_fields(scores: tuple[str, ...], objective: str, both_strands: bool, n_layers: int | None) -> list[tuple]:
    """The INFO definitions of a run: one per score, saying exactly what was computed (objective,
    strands, layer), then the status and the structured field."""
    return [*((info_field(name), "A", "Float", description(name, objective, both_strands, n_layers))
              for name in scores),
            STATUS_FIELD,
            structured_field(scores)]


def structured_field(scores: tuple[str, ...], extra: tuple[str, ...] = ()) -> tuple:
    """INFO/GENOSSM's definition: the run's scores, then `extra` per-ALT values (PCT when the
    model is calibrated), as subfields.

    `bcftools +split-vep -a GENOSSM` splits it into columns: it reads the subfield names from the
    text after "Format: " in the Description. The empty Consequence subfield is there because
    split-vep up to bcftools 1.16 (Debian 12) refuses a field without one, even when no severity
    is asked for."""
    names = [name.upper() for name in scores] + list(extra)
    return ("GENOSSM", ".", "String",
            "genossm scores, one entry per ALT. Format: Allele|" + "|".join(names) + "|STATUS|Consequence")


def extra_subfields(annotation_fields: list[tuple]) -> dict[str, str]:
    """{INFO id: subfield name} of the per-ALT genossm annotations (GENOSSM_PCT -> PCT) that
    INFO/GENOSSM repeats after the scores."""
    return {field[0]: field[0].removeprefix("GENOSSM_") for field in annotation_fields
            if field[1] == "A" and field[0].startswith("GENOSSM_")}


STATUS_FIELD = (
    "GENOSSM_STATUS", "A", "String", "genossm scoring status per ALT: ok, or why it was not scored "
     "(ref_mismatch, unknown_contig, out_of_bounds, symbolic, star, missing_alt, too_long, "
     "invalid_allele, ambiguous_allele, masked_reference, no_change)")

# -O, as bcftools spells it: plain VCF, bgzip VCF, BCF, uncompressed BCF; and the suffix of the
# file `vcf.VcfWriter` writes first (it picks the format by suffix; `u` is BCF, decompressed after).
OUTPUT_TYPES = {"v": ".vcf", "z": ".vcf.gz", "b": ".bcf", "u": ".bcf"}
# A tabix (.tbi) index holds positions below 2^29; past that only CSI can (as `bcftools index`).
TBI_MAX_POSITION = 2 ** 29

ROW_COLUMNS = ("record", "chrom", "pos", "id", "ref", "alt")  # TSV/Parquet: these, one per score, status


@dataclass(frozen=True)
class ScoreOutputs:
    """Where a run writes: the VCF (`-`: stdout), optional TSV and Parquet files, and whether to
    continue an interrupted run from the resume log beside the VCF.

    `output_type` (-O): v plain VCF, z bgzip VCF (tabix-indexed, as before -O existed), b BCF, u
    uncompressed BCF; None: from the suffix of `vcf` (`.vcf` v, `.bcf` b, `-` v, any other z).
    `write_index` (-W): index a z or b file, tabix (.tbi) for a VCF whose contigs all fit it,
    else CSI (.csi: BCF always, and any contig or record past 512 Mb)."""

    vcf: str = "-"
    tsv: str | None = None
    parquet: str | None = None
    resume: bool = False
    output_type: str | None = None
    write_index: bool = False

    @property
    def vcf_type(self) -> str:
        """The -O letter of the VCF output: as given, or from the file name's suffix."""
        if self.output_type:
            return self.output_type
        if self.vcf == "-" or self.vcf.endswith(".vcf"):
            return "v"
        return "b" if self.vcf.endswith(".bcf") else "z"

    def check(self, inputs: tuple = ()) -> None:
        """Usage errors, raised before any model is loaded: every output path is writable, none
        is an input (`inputs`: the VCF, the FASTA) or another output."""
        if self.resume and self.vcf == "-":
            raise UsageError("--resume needs an output file (-o OUT.vcf.gz): stdout cannot be resumed")
        if self.output_type is not None and self.output_type not in OUTPUT_TYPES:
            raise UsageError(f"-O/--output-type must be one of v (VCF), z (bgzip VCF), b (BCF), u "
                             f"(uncompressed BCF), got {self.output_type!r}")
        if self.write_index and (self.vcf == "-" or self.vcf_type not in ("z", "b")):
            raise UsageError(f"-W/--write-index needs a compressed output file (-O z or -O b with "
                             f"-o FILE; -o {self.vcf} writes {'stdout' if self.vcf == '-' else 'type ' + self.vcf_type}); "
                             "an index can only point into bgzip blocks")
        files = [(option, path) for option, path in (("-o", self.vcf), ("--tsv", self.tsv),
                                                     ("--parquet", self.parquet)) if path and path != "-"]
        for number, (option, path) in enumerate(files):
            check_output_path(path, option, inputs=(*inputs, *(other for _, other in files[:number])))
        if self.parquet:
            import_pyarrow()


def header_lines(model_path: str, model_sha256: str, command: str, settings: ScoreSettings,
                 objective: str) -> list[str]:
    strands = "forward,reverse" if settings.both_strands else "forward"
    return [
        f"##genossm_version={__version__}",
        f"##genossm_model={model_path}",
        f"##genossm_model_sha256={model_sha256}",
        f"##genossm_scoring=objective:{objective};window:{settings.window};strands:{strands};"
        f"scores:{','.join(settings.scores)}",
        f"##genossm_command={command}",
    ]


def import_pyarrow():
    """(pyarrow, pyarrow.parquet), or a usage error that says how to install them."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError("--parquet needs pyarrow, which is not installed; "
                         "install it with `pip install pyarrow` (or `pip install -e '.[parquet]'` in the genossm "
                         "clone) or use --tsv") from None
    return pa, pq


def count_records(path: str) -> int | None:
    """Records in a VCF file, for the progress bar's ETA (None for stdin and BCF).

    Counted from the text's lines, not through htslib, so that its warnings about the records
    appear once (when they are scored), not twice.
    """
    if path == "-":
        return None
    return vcf.count_record_lines(path)


class ScoreWriter:
    """Every output of one run, as a context manager; chunks are written in input order.

    On success the files appear under their final names and the resume log is removed; after an
    error no output appears and the resume log keeps the finished chunks. With `resume`, the
    first `completed_chunks` chunks were scored by the interrupted run: pass them to
    `write_saved` (their scores come from the log), then the others to `write`. `counts` holds
    the ALTs written by status.
    """

    def __init__(self, outputs: ScoreOutputs, vcf_header, header: list[str], fingerprint: str,
                 total: int | None, annotations: Annotations | None = None,
                 scores: tuple[str, ...] = DEFAULT_SCORES, score_info: list[tuple] | None = None):
        self.outputs, self._vcf_header, self._header = outputs, vcf_header, header
        # The run's scores (--score) and their INFO definitions (`info_fields`).
        self._scores = tuple(scores)
        self._score_info = score_info or info_fields(self._scores, "causal", True, None)
        self._annotations = annotations or Annotations()  # GENOSSM_PCT, --samples FORMAT fields
        # per-ALT annotations (GENOSSM_PCT) are subfields of INFO/GENOSSM too, after the scores
        self._extra = extra_subfields(self._annotations.info_fields)
        if self._extra:
            self._score_info = [field if field[0] != "GENOSSM" else structured_field(self._scores, tuple(self._extra.values()))
                                for field in self._score_info]
        self._fingerprint, self._total = fingerprint, total
        self.counts: dict[str, int] = {}
        self.completed_chunks = 0
        self._resume_log: ResumeLog | None = None
        self._sides: list[TsvScoreWriter | ParquetScoreWriter] = []

    def __enter__(self) -> ScoreWriter:
        outputs = self.outputs
        with contextlib.ExitStack() as stack:
            # Exit callbacks (pushed, so they see whether the run failed) run last-in first-out:
            # the VCF is finished before the side files, and the resume log goes last.
            if outputs.vcf != "-":
                resume_log = self._resume_log = ResumeLog(resume_log_path(outputs.vcf), self._fingerprint,
                                                          outputs.resume)
                stack.push(lambda failure, *_: resume_log.close(remove=failure is None))
                self.completed_chunks = resume_log.completed_chunks
            for path, writer_class in ((outputs.tsv, TsvScoreWriter), (outputs.parquet, ParquetScoreWriter)):
                if path:
                    side = writer_class(path, self._scores)
                    stack.push(lambda failure, *_, side=side: side.close(failed=failure is not None))
                    self._sides.append(side)
            self._vcf = stack.enter_context(VcfOutput(outputs, self._vcf_header, self._header,
                                                      self._annotations.info_fields, score_info=self._score_info))
            self.progress = PieceProgress(stack.enter_context(progress(total=self._total, desc="scoring", unit="rec")))
            self._exit = stack.pop_all()
        return self

    def __exit__(self, *failure) -> None:
        self._exit.__exit__(*failure)

    def write(self, chunk_index: int, chunk, rows: list[ScoreRow], alt_indices: list[int]) -> None:
        """A freshly scored chunk: [(record index, VcfRecord)], its rows and their ALT indices."""
        if self._resume_log is not None:
            self._resume_log.append_chunk(chunk_index, rows, alt_indices, chunk_digest(chunk))
        self._emit(chunk, rows)

    def write_saved(self, chunk) -> None:
        """The next chunk scored by the interrupted run, its scores read back from the resume log."""
        saved, digest = self._resume_log.saved_chunk()
        if digest != chunk_digest(chunk):
            first = chunk[0][1]
            raise InputError(f"the input changed since the interrupted run (record {first.number} on differs "
                             f"from what the resume log was written for); {START_OVER}",
                             path=self._resume_log.path)
        rows = []
        for index, record in chunk:
            for variant in record.variants:
                values = saved.get(index, {}).get(variant.alt_index)
                if values is None:
                    raise InputError(f"the resume log has no score for record {index + 1}; was the input "
                                     f"changed? {START_OVER[0].upper()}{START_OVER[1:]}", path=self._resume_log.path)
                rows.append(score_row(index, record, variant, *values))
        self._emit(chunk, rows)

    def _emit(self, chunk, rows: list[ScoreRow]) -> None:
        by_record: dict[int, list[ScoreRow]] = {}
        for row in rows:
            by_record.setdefault(row.record, []).append(row)
        for index, record in chunk:
            record_rows = by_record[index]
            annotated = self._annotations.info(record, record_rows)
            extra = [annotated.get(field, [None] * len(record_rows)) for field in self._extra]
            self._vcf.write(record, {
                **{info_field(name): [row.value(name) for row in record_rows] for name in self._scores},
                "GENOSSM_STATUS": [row.status for row in record_rows],
                "GENOSSM": (structured_entries(record.record.alts, record_rows, self._scores, extra)
                            if record.record.alts else None),
                **annotated,
            }, self._annotations.sample_values(index, record))
        for side in self._sides:
            side.write(rows)
        for row in rows:
            self.counts[row.status] = self.counts.get(row.status, 0) + 1
        self.progress.finish(chunk[0][0], len(chunk))


def structured_entries(alts: tuple[str, ...], rows: list[ScoreRow],
                       scores: tuple[str, ...] = DEFAULT_SCORES, extra: list[list] = ()) -> list[str]:
    """`Allele|<score>...|<extra>...|STATUS|` per ALT for INFO/GENOSSM (`scores` in the run's
    order; `extra`: one list of per-ALT values per annotation subfield, e.g. PCT): Allele
    is the ALT as the record writes it (letter case kept), numbers as in GENOSSM_LLR (6 significant
    digits), a missing one empty (split-vep's missing value).

    A breakend ALT can hold `|` (`A[gi|9626243|ref|NC_001416.1|:2000[`), which would split the entry:
    in Allele, `%` and `|` are percent-encoded (`%25`, `%7C`), as the VCF spec encodes its own
    separators."""
    return ["|".join([alt.replace('%', '%25').replace('|', '%7C'), *(format_float(row.value(name)) for name in scores),
                      *(format_float(values[number]) for values in extra), row.status, ""])
            for number, (alt, row) in enumerate(zip(alts, rows, strict=True))]


class VcfOutput:
    """The annotated VCF in the type -O asks for, indexed with -W; a context manager whose
    `write(record, values)` is `vcf.VcfWriter.write`.

    `vcf.VcfWriter` picks its format from a file name's suffix, so it writes a staged file
    `TMP.vcf`, `TMP.vcf.gz` or `TMP.bcf` beside the output's temporary name TMP; on success that
    file (decompressed for `u`, indexed for -W) becomes TMP and its index TMP.tbi
    or TMP.csi, and `atomic_path` renames both to the final names. Compressed types on stdout are
    staged in a temporary directory and copied out at the end.
    """

    def __init__(self, outputs: ScoreOutputs, vcf_header, header: list[str], extra_info_fields: list[tuple] = (),
                 score_info: list[tuple] | None = None):
        self._outputs, self._vcf_header, self._header = outputs, vcf_header, header
        self._score_info = score_info or info_fields(DEFAULT_SCORES, "causal", True, None)
        self._extra_info_fields = list(extra_info_fields)
        self._type = outputs.vcf_type
        self._max_end = 0

    def __enter__(self) -> VcfOutput:
        if self._outputs.vcf == "-" and self._type == "v":
            self._writer = vcf.VcfWriter("-", self._vcf_header, self._info_fields(), self._header).__enter__()
            self._exit = self._writer
            return self
        with contextlib.ExitStack() as stack:
            if self._outputs.vcf == "-":
                self._target = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "out"
            else:
                self._target = stack.enter_context(atomic_path(self._outputs.vcf))
            self._staged = self._target.with_name(self._target.name + OUTPUT_TYPES[self._type])
            stack.push(lambda failure, *_: self._finish() if failure is None else None)
            self._writer = stack.enter_context(vcf.VcfWriter(self._staged, self._vcf_header, self._info_fields(),
                                                             self._header))
            self._exit = stack.pop_all()
        return self

    def _info_fields(self) -> list[tuple]:
        """The run's INFO fields (`info_fields`, then the annotations'), and for BCF an END definition when the input has none: htslib (1.21, in
        pysam) writes END into a BCF record with a symbolic ALT such as `<DEL>`, and a key missing
        from the header makes the record unreadable."""
        fields = [*self._score_info, *self._extra_info_fields]
        if self._type in ("b", "u") and "END" not in self._vcf_header.info:
            return [*fields, ("END", "1", "Integer", "End position of the variant")]
        return fields

    def write(self, record, values: dict, sample_values: tuple | None = None) -> None:
        self._max_end = max(self._max_end, record.record.stop)
        self._writer.write(record, values, sample_values)

    def __exit__(self, *failure) -> None:
        self._exit.__exit__(*failure)

    def _finish(self) -> None:
        """The staged file (and its index) under the temporary output name; stdout gets a copy."""
        staged, target = self._staged, self._target
        if self._type == "u":
            # Uncompressed BCF is the BCF stream without its BGZF blocks (pysam cannot write it).
            with gzip.open(staged, "rb") as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)
            staged.unlink()
        else:
            if self._outputs.write_index:
                self._index(staged)
            os.replace(staged, target)
            for suffix in (".tbi", ".csi"):
                if Path(f"{staged}{suffix}").exists():
                    os.replace(f"{staged}{suffix}", f"{target}{suffix}")
        if self._outputs.vcf == "-":
            with open(target, "rb") as source:
                shutil.copyfileobj(source, sys.stdout.buffer)
            sys.stdout.buffer.flush()

    def _index(self, staged: Path) -> None:
        """-W: keep the writer's .tbi where it suffices, else build a CSI (BCF, long contigs)."""
        import pysam

        if self._type == "z" and not self._needs_csi():
            return  # `vcf.VcfWriter` wrote the .tbi (or warned that unsorted records cannot be indexed)
        Path(f"{staged}.tbi").unlink(missing_ok=True)
        try:
            pysam.tabix_index(os.fspath(staged), preset="vcf", csi=True, force=True, keep_original=True)
        except OSError:
            log.warning("%s: records are not sorted by position, so no CSI index was written (the "
                        "input order is kept on purpose; `bcftools sort -W` makes an indexed copy)",
                        self._outputs.vcf)
            Path(f"{staged}.csi").unlink(missing_ok=True)

    def _needs_csi(self) -> bool:
        lengths = [contig.length or 0 for contig in self._vcf_header.contigs.values()]
        return max([self._max_end, *lengths]) > TBI_MAX_POSITION


def format_float(value: float | None) -> str:
    """Six significant digits, like the VCF output; `.`/`NA`-free: missing is the empty string."""
    return "" if value is None or math.isnan(value) else f"{value:.6g}"


class TsvScoreWriter:
    """Tab-separated scores, one line per ALT, header line first."""

    def __init__(self, path: str | os.PathLike, scores: tuple[str, ...] = DEFAULT_SCORES):
        self._scores = scores
        self._stack = contextlib.ExitStack()
        self._tmp = self._stack.enter_context(atomic_path(path))
        # IDs in Latin-1 from older tools pass through byte for byte, as in the VCF.
        self._file = open(self._tmp, "w", encoding="utf-8", errors="surrogateescape", newline="\n")
        self._file.write("\t".join((*ROW_COLUMNS, *scores, "status")) + "\n")

    def write(self, rows: list[ScoreRow]) -> None:
        for row in rows:
            self._file.write("\t".join((
                str(row.record), row.chrom, str(row.pos), row.id, row.ref, row.alt,
                *(format_float(row.value(name)) for name in self._scores), row.status)) + "\n")

    def close(self, failed: bool = False) -> None:
        self._file.close()
        if failed:
            self._stack.__exit__(RuntimeError, RuntimeError("failed"), None)
        else:
            self._stack.close()


class ParquetScoreWriter:
    """The same columns as the TSV in a Parquet file (needs pyarrow: `pip install pyarrow`)."""

    def __init__(self, path: str | os.PathLike, scores: tuple[str, ...] = DEFAULT_SCORES):
        pa, pq = import_pyarrow()
        self._pa = pa
        self._scores = scores
        self._schema = pa.schema([
            ("record", pa.int64()), ("chrom", pa.string()), ("pos", pa.int64()), ("id", pa.string()),
            ("ref", pa.string()), ("alt", pa.string()), *((name, pa.float64()) for name in scores),
            ("status", pa.string()),
        ])
        self._stack = contextlib.ExitStack()
        self._tmp = self._stack.enter_context(atomic_path(path))
        self._writer = pq.ParquetWriter(self._tmp, self._schema)

    def write(self, rows: list[ScoreRow]) -> None:
        if not rows:
            return
        columns = {name: [_valid_text(row.value(name) if name in self._scores else getattr(row, name))
                          for row in rows] for name in self._schema.names}
        self._writer.write_table(self._pa.table(columns, schema=self._schema))

    def close(self, failed: bool = False) -> None:
        self._writer.close()
        if failed:
            self._stack.__exit__(RuntimeError, RuntimeError("failed"), None)
        else:
            self._stack.close()


def _valid_text(value):
    """Parquet strings must be UTF-8: bytes that are not (kept as surrogates) become U+FFFD."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value
