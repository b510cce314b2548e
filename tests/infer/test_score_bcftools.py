"""`genossm score` and the bcftools conventions: the structured INFO/GENOSSM field that
`bcftools +split-vep` splits, output types (-O), indexes (-W), regions (-r/-R); read back with the
real bcftools."""

from __future__ import annotations

import subprocess

import pytest

from genossm.cli.main import main
from infer_helpers import EDGE_CASES, LAMBDA, save_tiny_model


@pytest.fixture(scope="module")
def hyena_dir(tmp_path_factory):
    return save_tiny_model("hyena", tmp_path_factory.mktemp("models") / "hyena")


def score(hyena_dir, *args, input=EDGE_CASES) -> int:
    return main(["-q", "score", str(input), "--fasta", str(LAMBDA), "--model", str(hyena_dir),
                 "--skip-unknown", "--max-allele-length", "16", *map(str, args)])


def bcftools(*args) -> list[str]:
    result = subprocess.run(["bcftools", *map(str, args)], capture_output=True, text=True, check=True)
    return result.stdout.strip().split("\n")


def has_split_vep() -> bool:
    listed = subprocess.run(["bcftools", "plugin", "-l"], capture_output=True, text=True)
    return "split-vep" in listed.stdout


@pytest.fixture(scope="module")
def scored(hyena_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("scored") / "scored.vcf.gz"
    assert score(hyena_dir, "-o", out) == 0
    return out


@pytest.mark.skipif(not has_split_vep(), reason="this bcftools has no split-vep plugin "
                    "(`bcftools plugin -l`; Debian's bcftools package ships it)")
def test_split_vep_lists_and_splits_the_structured_field(scored):
    assert bcftools("+split-vep", "-l", "-a", "GENOSSM", scored) == [
        "0\tAllele", "1\tLLR", "2\tEMBDIST", "3\tSTATUS", "4\tConsequence"]
    split = bcftools("+split-vep", "-a", "GENOSSM", "-d", "-f", "%ID\t%Allele\t%LLR\t%EMBDIST\t%STATUS\n",
                     scored)
    per_alt = []
    for line in bcftools("query", "-i", 'ALT!="."', "-f",
                         "%ID\t%ALT\t%INFO/GENOSSM_LLR\t%INFO/GENOSSM_EMBDIST\t%INFO/GENOSSM_STATUS\n", scored):
        record_id, *columns = line.split("\t")
        per_alt += [(record_id, *values) for values in zip(*(column.split(",") for column in columns))]
    assert [line.split("\t") for line in split] == [
        [record_id, alt.replace("|", "%7C"), llr, embdist, status] for record_id, alt, llr, embdist, status in per_alt]
    assert any("%7C" in line for line in split)  # the breakend ALT's `|` cannot split its entry
    assert any(status == "ok" for *_, status in per_alt) and any(status != "ok" for *_, status in per_alt)


def test_structured_field_header_and_missing_scores(scored):
    header = bcftools("view", "-h", scored)
    assert ('##INFO=<ID=GENOSSM,Number=.,Type=String,Description="genossm scores, one entry per ALT. '
            'Format: Allele|LLR|EMBDIST|STATUS|Consequence">') in header
    values = dict(line.split("\t") for line in bcftools("query", "-f", "%ID\t%INFO/GENOSSM\n", scored))
    assert values["sv1"] == "<DEL>|||symbolic|"
    assert values["."] == "."  # ALT '.': no allele, no entry
