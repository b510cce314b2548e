"""Inference with a trained model: each command's job as one library call.

    score/          variant effect scores (`genossm score`): ScoreJob, score_vcf
    haplotype/      per-sample haplotype scores (`genossm score --samples`): FORMAT fields
    calibration/    score distributions over random variants (`genossm calibrate`), GENOSSM_PCT
    embed/          region embeddings to HDF5 (`genossm embed`): EmbedJob, embed_regions
    mutagenesis.py  saturation mutagenesis of a region (`genossm mutagenesis`)
    ranks.py        one job function for every rank: one process, or sharded over devices/nodes
    runtime.py      device, threads, the model and its checksum, the bundled sample files

Imports io, models and the shared base only, never train (docs/layout.md).
"""
