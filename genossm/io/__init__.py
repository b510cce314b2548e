"""Genome files: FASTA (fasta.py), VCF/BCF (vcf.py), BAM/CRAM (bam.py), BED and regions (intervals.py)."""
