"""The per-sample FORMAT values of every record of a position-sorted VCF, in input order.

`HaplotypeAnnotator` reads the input a second time, on its own handle, a little ahead of the
writer: a record's values need the records up to its tile's window end (`window` bases on). It
keeps only the records of the windows still to be scored, scores the haplotype windows of several
tiles per model call (`HaplotypeScorer`), and hands the writer each record's values with
`values(index, record)`, records asked for in input order. Memory is bounded by the records in a
window, not by the file.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from genossm.errors import InputError
from genossm.infer.haplotype.genotypes import Genotype, haplotype_alleles, read_genotype, window_phase_set
from genossm.infer.haplotype.scorer import HaplotypeScorer
from genossm.infer.haplotype.windows import Allele, apply_alleles
from genossm.infer.score.chunks import allele_status
from genossm.infer.score.regions import Regions, selected_records
from genossm.infer.score.settings import ScoreSettings
from genossm.infer.score.tiles import TileLayout
from genossm.io import vcf
from genossm.tokenizer import encode

log = logging.getLogger("genossm.infer.haplotype")

HLLR, HVAR = "GENOSSM_HLLR", "GENOSSM_HVAR"
FORMAT_FIELDS = [
    (HLLR, ".", "Float", "genossm haplotype log-likelihood ratio log P(haplotype window) - log P(reference "
     "window) of this record's tile, one value per haplotype, all of the haplotype's ALTs in the window "
     "applied in cis (unphased heterozygous ALTs on haplotype 1), mean of both strands"),
    (HVAR, ".", "Float", "genossm share of GENOSSM_HLLR due to this record's ALT on each haplotype "
     "(chain rule: log-likelihood differences from the allele to the next one of the haplotype); 0 where "
     "the haplotype carries REF, . where the ALT was not applied"),
]
# Haplotype windows scored per model round: enough to fill batches across a few tiles.
WINDOWS_PER_ROUND = 256


@dataclass
class Entry:
    """A record as the haplotype pass needs it."""

    index: int
    contig: str  # as written in the VCF
    position0: int  # POS - 1: the tile is chosen from it, as for GENOSSM_LLR
    variants: list[vcf.Variant]
    ok: list[bool]  # per ALT: scorable (GENOSSM_STATUS ok), hence applicable
    genotypes: dict[str, Genotype]
    values: dict | None = field(default=None)  # per sample: {HLLR: [...], HVAR: [...]}, once scored

    @property
    def placeable(self) -> bool:
        return any(self.ok)


class HaplotypeAnnotator:
    """FORMAT/GENOSSM_HLLR and GENOSSM_HVAR per selected sample; a context manager."""

    format_fields = FORMAT_FIELDS
    format_keys = (HLLR, HVAR)

    def __init__(self, input_path: str, genome, model, settings: ScoreSettings, samples: list[str], *,
                 device="cpu", regions: Regions | None = None):
        self.input_path, self.genome, self.settings, self.samples = input_path, genome, settings, samples
        self.regions = regions
        self.layout = TileLayout(settings.window)
        self.scorer = HaplotypeScorer(model, both_strands=settings.both_strands,
                                      batch_size=settings.batch_size, device=device)
        self.windows_scored = 0  # haplotype windows (sample x haplotype x tile), before deduplication
        self._pending: deque[Entry] = deque()  # read, values not yet computed
        self._context: deque[Entry] = deque()  # read records of the current contig, kept while a window may need them
        self._done: dict[int, Entry] = {}
        self._seen_contigs: set[str] = set()

    def __enter__(self) -> "HaplotypeAnnotator":
        self._reader = vcf.VcfReader(self.input_path).__enter__()
        self._numbered = enumerate(selected_records(self._reader, self.input_path, self.regions))
        self._last_read: Entry | None = None  # for the sort-order checks
        self._exhausted = False
        return self

    def __exit__(self, *exc) -> None:
        self._reader.__exit__(*exc)

    # -- what the writer asks for -------------------------------------------------------------------
    def values(self, index: int, record: vcf.VcfRecord) -> dict[str, dict[str, list]]:
        """{sample: {GENOSSM_HLLR: [...], GENOSSM_HVAR: [...]}} for record `index` (asked in order)."""
        while index not in self._done:
            if not any(entry.index == index for entry in self._pending):
                if not self._read_one():
                    raise InputError(f"record {index + 1} was not met again when the input was read for "
                                     "--samples (did it change while being scored?)", path=self.input_path)
                continue
            self._score_round()
        return self._done.pop(index).values

    # -- reading ------------------------------------------------------------------------------------
    def _read_one(self) -> bool:
        """Read the next record into `_pending`; False at the end of the input."""
        if self._exhausted:
            return False
        try:
            index, record = next(self._numbered)
        except StopIteration:
            self._exhausted = True
            return False
        entry = self._entry(index, record)
        last, self._last_read = self._last_read, entry
        if last is not None and last.contig == entry.contig and entry.position0 < last.position0:
            raise InputError(f"--samples needs a VCF sorted by position within each contig: record "
                             f"{entry.contig}:{entry.position0 + 1} comes after {last.contig}:{last.position0 + 1} "
                             "(sort it with `bcftools sort`)", path=self.input_path)
        if last is None or last.contig != entry.contig:
            if entry.contig in self._seen_contigs:
                raise InputError(f"--samples needs the records of each contig together: {entry.contig} "
                                 "appears again after another contig (sort it with `bcftools sort`)",
                                 path=self.input_path)
            self._seen_contigs.add(entry.contig)
        self._pending.append(entry)
        return True

    def _entry(self, index: int, record: vcf.VcfRecord) -> Entry:
        ok = [allele_status(variant, self.genome, self.settings, self.input_path) is None
              for variant in record.variants]
        genotypes = {sample: read_genotype(record.record, sample) for sample in self.samples}
        return Entry(index, record.record.contig, record.record.pos - 1, record.variants, ok, genotypes)

    def _read_until(self, contig: str, end: int) -> None:
        """Read ahead until a record of another contig, or one at or past `end`, has been read."""
        while not self._exhausted:
            last = self._pending[-1] if self._pending else None
            if last is not None and (last.contig != contig or last.position0 >= end):
                return
            self._read_one()

    # -- scoring ------------------------------------------------------------------------------------
    def _score_round(self) -> None:
        """Score the next pending tiles (at least one), about WINDOWS_PER_ROUND haplotype windows."""
        planned = []  # (owned entries, reference tokens, haplotype windows, per-sample haplotype plans)
        windows = 0
        while self._pending and (not planned or windows < WINDOWS_PER_ROUND):
            first = self._pending[0]
            if not first.placeable:
                self._pending.popleft()
                first.values = {sample: _missing(first.genotypes[sample]) for sample in self.samples}
                self._done[first.index] = first
                continue
            tile_start = self.layout.tile_start(first.position0)
            self._read_until(first.contig, tile_start + self.settings.window)
            owned = []
            while (self._pending and self._pending[0].contig == first.contig
                   and self.layout.tile_start(self._pending[0].position0) == tile_start):
                entry = self._pending.popleft()
                self._context.append(entry)
                if entry.placeable:
                    owned.append(entry)
                else:
                    entry.values = {sample: _missing(entry.genotypes[sample]) for sample in self.samples}
                    self._done[entry.index] = entry
            plan = self._plan_tile(first.contig, tile_start, owned)
            windows += len(plan[2])
            planned.append(plan)
        scores = self.scorer.score([(reference, haplotypes) for _, reference, haplotypes, _ in planned])
        self.windows_scored += windows
        for (owned, _, _, haplotype_plans), tile_scores in zip(planned, scores):
            for entry in owned:
                entry.values = {sample: self._record_values(entry, (haplotype_plans[sample][0][entry.index],
                                                                            haplotype_plans[sample][1]), tile_scores)
                                for sample in self.samples}
                self._done[entry.index] = entry

    def _window_entries(self, contig: str, tile_start: int) -> list[Entry]:
        """The records read whose ALTs may lie in the window; older ones are dropped from the context."""
        while self._context and (self._context[0].contig != contig
                                 or self._context[0].position0 < tile_start - self.settings.max_allele_length):
            self._context.popleft()
        end = tile_start + self.settings.window
        return [entry for entry in list(self._context) + list(self._pending)
                if entry.contig == contig and entry.placeable and entry.position0 < end]

    def _plan_tile(self, contig: str, tile_start: int, owned: list[Entry]):
        """The tile's reference window, its haplotype windows, and for each sample which window each
        haplotype is and which of its alleles were applied (by (record index, allele))."""
        window = self.settings.window
        entries = self._window_entries(contig, tile_start)
        extra = sum(len(variant.norm_ref) for entry in entries for variant in entry.variants) + 1
        name = self.genome.resolve(contig)
        tokens = self.genome.fetch_tokens(name, tile_start, tile_start + window + extra, pad=True)
        reference = np.ascontiguousarray(tokens[:window])
        haplotypes, plans = [], {}
        for sample in self.samples:
            genotypes = [entry.genotypes[sample] for entry in entries]
            phase_set = window_phase_set(genotypes)
            ploidy = max((entry.genotypes[sample].ploidy for entry in owned), default=1)
            sample_plan = []
            carried_here = {entry.index: haplotype_alleles(genotype, genotype.phased and genotype.phase_set == phase_set)
                            for entry, genotype in zip(entries, genotypes)}
            for haplotype in range(ploidy):
                alleles, keys = [], []
                for entry in entries:
                    carried = carried_here[entry.index]
                    allele = carried[haplotype] if haplotype < len(carried) else None
                    if not allele or allele > len(entry.variants) or not entry.ok[allele - 1]:
                        continue
                    variant = entry.variants[allele - 1]
                    if not tile_start <= variant.start < tile_start + window:
                        continue
                    alleles.append(Allele(variant.start - tile_start, len(variant.norm_ref),
                                          encode(variant.norm_alt)))
                    keys.append((entry.index, allele))
                order = sorted(range(len(alleles)), key=lambda i: alleles[i].offset)
                built, applied = apply_alleles(tokens, window, [alleles[i] for i in order])
                applied_keys = [keys[i] for i, used in zip(order, applied) if used]
                sample_plan.append((len(haplotypes), applied_keys))
                haplotypes.append(built)
            plans[sample] = (carried_here, sample_plan)
        return owned, reference, haplotypes, plans

    @staticmethod
    def _record_values(entry: Entry, plan, tile_scores) -> dict[str, list]:
        """The FORMAT values of `entry` for one sample: `plan` is (the allele each haplotype carries
        here, [(window index, applied (record index, allele) keys)] per haplotype)."""
        carried, haplotype_windows = plan
        hllr, hvar = [], []
        for haplotype, allele in enumerate(carried):
            if allele is None or haplotype >= len(haplotype_windows):
                hllr.append(None)
                hvar.append(None)
                continue
            window_index, applied_keys = haplotype_windows[haplotype]
            score = tile_scores[window_index]
            hllr.append(score.llr)
            if allele == 0:
                hvar.append(0.0)
            elif (entry.index, allele) in applied_keys:
                hvar.append(score.shares[applied_keys.index((entry.index, allele))])
            else:
                hvar.append(None)
        return {HLLR: hllr, HVAR: hvar}


def _missing(genotype: Genotype) -> dict[str, list]:
    return {HLLR: [None] * genotype.ploidy, HVAR: [None] * genotype.ploidy}
