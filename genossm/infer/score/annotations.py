"""Optional values added to each record by `genossm score`, beside the per-ALT scores.

`Annotations` gathers what the writer adds when asked: `GENOSSM_PCT` (INFO, per ALT) when the model
carries a calibration (`genossm.infer.calibration`), and per-sample FORMAT fields with --samples
(`genossm.infer.haplotype`). The writer (`genossm.infer.score.outputs.ScoreWriter`) needs only
`info_fields`, `info(record, rows)` and `sample_values(index, record)`; each part stays in its
own package.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from genossm.errors import UsageError

log = logging.getLogger("genossm.infer.score")


@dataclass
class Annotations:
    calibration: object | None = None  # genossm.infer.calibration.Calibration
    haplotypes: object | None = None  # genossm.infer.haplotype.HaplotypeAnnotator, entered
    sample_columns: dict[str, int] | None = None  # sample name -> 0-based sample column of the VCF

    @property
    def info_fields(self) -> list[tuple]:
        return list(self.calibration.info_fields) if self.calibration is not None else []

    def info(self, record, rows) -> dict:
        """Extra INFO values of one record, from its ScoreRows (one per ALT, in ALT order)."""
        if self.calibration is None or not record.record.alts:
            return {}
        return self.calibration.info(rows)

    def sample_values(self, index: int, record):
        """(FORMAT keys, {sample column: {key: values}}) for `vcf.VcfWriter.write`, or None."""
        if self.haplotypes is None:
            return None
        by_sample = self.haplotypes.values(index, record)
        return (self.haplotypes.format_keys,
                {self.sample_columns[sample]: values for sample, values in by_sample.items()})


@dataclass(frozen=True)
class AnnotationPlan:
    """What a run will add, decided and checked before the model loads: the model's calibration
    (when its window and strands are this run's) and the samples of --samples (VCF order)."""

    calibration: object | None = None
    samples: tuple[str, ...] | None = None
    sample_columns: dict | None = None

    def header_lines(self) -> list[str]:
        """Lines for the VCF header (they enter the resume fingerprint too)."""
        from genossm.io.vcf_samples import format_header_lines

        lines = []
        if self.calibration is not None:
            source = self.calibration.source
            lines.append(f"##genossm_calibration=score:{self.calibration.score};window:{self.calibration.window};"
                         f"snvs:{self.calibration.classes.get('snv', {}).get('count', 0)};"
                         f"genomes:{','.join(source.get('fasta', []))};seed:{source.get('seed', '')}")
        if self.samples is not None:
            from genossm.infer.haplotype.annotator import FORMAT_FIELDS

            lines.append(f"##genossm_haplotypes=samples:{len(self.samples)};unphased_heterozygous:haplotype1")
            lines.extend(format_header_lines(FORMAT_FIELDS))
        return lines

    @contextlib.contextmanager
    def open(self, job, model, settings, device):
        """The run's `Annotations` (haplotype scoring reads the input and the FASTA on its own handles)."""
        if self.samples is None:
            yield Annotations(calibration=self.calibration)
            return
        from genossm.infer.haplotype import HaplotypeAnnotator
        from genossm.io.fasta import open_fasta

        with open_fasta(job.fasta) as genome, HaplotypeAnnotator(
                job.input, genome, model, settings, list(self.samples), device=device,
                regions=job.regions) as haplotypes:
            yield Annotations(calibration=self.calibration, haplotypes=haplotypes,
                              sample_columns=self.sample_columns)
        log.info("haplotype windows scored: %d (%d model passes after deduplication)",
                 haplotypes.windows_scored, haplotypes.scorer.passes)


def plan_annotations(job, model_path, objective: str, settings) -> AnnotationPlan:
    """The AnnotationPlan of `job`, with its usage and input errors (no weights loaded)."""
    from genossm.infer.calibration import load_calibration
    from genossm.models.checkpoint import read_checkpoint_config

    calibration = load_calibration(model_path, read_checkpoint_config(model_path))
    if calibration is not None and not calibration.matches(settings.window, settings.both_strands):
        log.warning("GENOSSM_PCT is not added: the model is calibrated for a %d-base window, %s, and this run "
                    "uses %d, %s (rerun `genossm calibrate` with these settings or drop --window/--no-rc)",
                    calibration.window, _strands(calibration.both_strands), settings.window,
                    _strands(settings.both_strands))
        calibration = None
    selection = getattr(job, "samples", None)
    if selection is None:
        return AnnotationPlan(calibration=calibration)
    if job.input == "-":
        raise UsageError("--samples/-S reads the input twice (haplotype windows need the records ahead): "
                         "give a VCF file, not stdin")
    if objective != "causal":
        raise UsageError(f"--samples needs a causal model (haplotype log-likelihoods); this one is {objective!r}")
    from genossm.io import vcf

    with vcf.VcfReader(job.input) as reader:
        header_samples = list(reader.header.samples)
    samples = selection.resolve(header_samples, job.input)
    return AnnotationPlan(calibration=calibration, samples=tuple(samples),
                          sample_columns={name: header_samples.index(name) for name in samples})


def _strands(both: bool) -> str:
    return "both strands" if both else "forward strand"
