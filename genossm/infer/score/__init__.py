"""Variant effect scoring (`genossm score`), as a library.

    job.py          ScoreJob (the options) and score_vcf(job): check, load, run on every rank
    settings.py     ScoreSettings: window, strands, allele limit, batch and chunk sizes
    chunks.py       ChunkScorer: a chunk of VCF records -> one ScoreRow per ALT
    definitions.py  the --score definitions: names, INFO fields, header texts, the default
    scorer.py       VariantScorer (fast path) and score_pairs_naive (reference), every definition
    tiles.py        the fixed tiles and the ref/alt window pair of an allele
    likelihood.py   per-position log-likelihoods from logits (no parameters)
    model_state.py  batch operations on a recurrent model's state (prefix-state reuse)
    rows.py         ScoreRow and the statuses
    outputs.py      ScoreWriter: the VCF (-O type, -W index), TSV and Parquet outputs, in input order
    regions.py      -r/-R: the records read, through the index or filtered while reading
    annotations.py  what else the writer adds: GENOSSM_PCT (calibration), --samples FORMAT fields
    resume_log.py   the scores of finished chunks, for --resume

`from genossm.infer.score import ScoreJob, score_vcf` is the whole command.
"""

from genossm.infer.score.job import ScoreJob, score_vcf
from genossm.infer.score.outputs import ScoreOutputs

__all__ = ["ScoreJob", "ScoreOutputs", "score_vcf"]
