"""Zero-shot variant-effect benchmark (issue 20): labelled SNV sets and AUROC tables.

    python benchmarks/vep run --set bacteria --count 250 --out runs/vep/bacteria \
        --json benchmarks/results/vep_bacteria_bundled.json

Modules: `sources` (the public data), `annotation` (GFF gene models, prodigal), `codons`
(genetic codes, coding consequences), `build` (candidate SNVs and the seeded draw), `setfiles`
(VCF, labels TSV, set.json), `markov` (the order-k baseline's SNV scores), `auroc` (rank AUROC,
pooled and per substitution class), `evaluate` (genossm score + baseline -> one JSON record).
"""
