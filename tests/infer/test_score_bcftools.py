"""`genossm score` and the bcftools conventions: the structured INFO/GENOSSM field that
`bcftools +split-vep` splits, output types (-O), indexes (-W), regions (-r/-R); read back with the
real bcftools."""

from __future__ import annotations

import contextlib
import subprocess

import pytest

from genossm.cli.main import main
from infer_helpers import EDGE_CASES, LAMBDA, LAMBDA_CONTIG, lambda_sequence, save_tiny_model, write_vcf


@pytest.fixture(scope="module")
def hyena_dir(tmp_path_factory):
    return save_tiny_model("hyena", tmp_path_factory.mktemp("models") / "hyena")


def score(hyena_dir, input, *args) -> int:
    return main(["-q", "score", str(input), "--fasta", str(LAMBDA), "--model", str(hyena_dir),
                 "--skip-unknown", "--max-allele-length", "16", *map(str, args)])


def bcftools(*args) -> list[str]:
    result = subprocess.run(["bcftools", *map(str, args)], capture_output=True, text=True, check=True)
    return result.stdout.strip().split("\n")


def has_split_vep() -> bool:
    listed = subprocess.run(["bcftools", "plugin", "-l"], capture_output=True, text=True)
    return "split-vep" in listed.stdout


@pytest.fixture(scope="module")
def snvs(tmp_path_factory):
    """Sorted SNVs on the lambda genome: bgzip-compressed, tabix-indexed, and as plain text."""
    sequence = lambda_sequence()
    rows = [(LAMBDA_CONTIG, pos, f"snv{pos}", sequence[pos - 1], "A" if sequence[pos - 1] != "A" else "C")
            for pos in (300, 1200, 5000, 9000, 20000, 40000)]
    directory = tmp_path_factory.mktemp("snvs")
    text = write_vcf(directory / "snvs.vcf", {LAMBDA_CONTIG: len(sequence)}, rows)
    subprocess.run(["bgzip", "-k", str(text)], check=True)
    subprocess.run(["tabix", "-p", "vcf", f"{text}.gz"], check=True)
    return text


@pytest.fixture(scope="module")
def scored(hyena_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("scored") / "scored.vcf.gz"
    assert score(hyena_dir, EDGE_CASES, "-o", out) == 0
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


def records(path) -> list[str]:
    return bcftools("view", "-H", path)


@pytest.mark.parametrize("output_type, magic", [("v", b"##fileformat"), ("z", b"\x1f\x8b"), ("b", b"\x1f\x8b"),
                                                ("u", b"BCF\x02")])
def test_output_type_writes_what_bcftools_writes(hyena_dir, snvs, tmp_path, output_type, magic):
    out = tmp_path / "scored.out"  # a name without a telling suffix: -O decides
    assert score(hyena_dir, snvs, "-O", output_type, "-o", out) == 0
    assert out.read_bytes().startswith(magic)
    plain = tmp_path / "plain.vcf"
    assert score(hyena_dir, snvs, "-o", plain) == 0
    assert records(out) == records(plain)
    assert (output_type == "z") == (tmp_path / "scored.out.tbi").exists()  # bgzip VCF: tabix as before -O


def test_output_type_on_stdout(hyena_dir, snvs, tmp_path, capfdbinary):
    assert score(hyena_dir, snvs, "-O", "z", "-o", "-") == 0
    data = capfdbinary.readouterr().out
    assert data.startswith(b"\x1f\x8b")
    (tmp_path / "out.vcf.gz").write_bytes(data)
    assert len(records(tmp_path / "out.vcf.gz")) == 6


def test_suffix_inference_without_output_type_keeps_bytes(hyena_dir, snvs, tmp_path):
    assert score(hyena_dir, snvs, "-o", tmp_path / "a.vcf") == 0
    assert score(hyena_dir, snvs, "-O", "v", "-o", tmp_path / "b.vcf") == 0
    a, b = ((tmp_path / name).read_text().split("\n") for name in ("a.vcf", "b.vcf"))
    # Only the command line in the header differs (it names -O); every other byte is the same.
    assert [line for line in a if "genossm_command" not in line] == [line for line in b if "genossm_command" not in line]


@pytest.mark.parametrize("output_type, name, index", [("z", "s.vcf.gz", "s.vcf.gz.tbi"), ("b", "s.bcf", "s.bcf.csi")])
def test_write_index_makes_a_region_query_work(hyena_dir, snvs, tmp_path, output_type, name, index):
    out = tmp_path / name
    assert score(hyena_dir, snvs, "-O", output_type, "-W", "-o", out) == 0
    assert (tmp_path / index).exists()
    assert bcftools("query", "-r", f"{LAMBDA_CONTIG}:1000-10000", "-f", "%ID\n", out) == ["snv1200", "snv5000",
                                                                                          "snv9000"]


def test_write_index_is_csi_past_512_mb(hyena_dir, tmp_path):
    # A contig declared longer than a .tbi can address: -W writes CSI, which `bcftools index` would.
    sequence = lambda_sequence()
    snvs = write_vcf(tmp_path / "long.vcf", {LAMBDA_CONTIG: 2 ** 29 + 1},
                     [(LAMBDA_CONTIG, 300, "snv300", sequence[299], "A" if sequence[299] != "A" else "C")])
    out = tmp_path / "s.vcf.gz"
    assert score(hyena_dir, snvs, "-W", "-o", out) == 0
    assert (tmp_path / "s.vcf.gz.csi").exists() and not (tmp_path / "s.vcf.gz.tbi").exists()
    assert bcftools("query", "-r", f"{LAMBDA_CONTIG}:1-1000", "-f", "%ID\n", out) == ["snv300"]


@pytest.mark.parametrize("args", [["-W", "-o", "-"], ["-W", "-O", "v", "-o", "x.vcf"], ["-W", "-O", "u", "-o", "x.bcf"],
                                  ["-O", "x", "-o", "x.vcf"]])
def test_bad_output_type_or_index_is_a_usage_error(hyena_dir, snvs, tmp_path, monkeypatch, capsys, args):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) if args[:1] == ["-O"] else contextlib.nullcontext():
        assert score(hyena_dir, snvs, *args) == 2
    assert "-W/--write-index" in capsys.readouterr().err or args[:1] == ["-O"]
    assert not list(tmp_path.glob("x.*"))


@pytest.mark.parametrize("output_type", ["b", "u"])
def test_bcf_of_symbolic_alleles_reads_back(hyena_dir, tmp_path, output_type):
    # htslib writes END into the BCF record of a `<DEL>`; without END in the header that record
    # was unreadable ("Invalid INFO id"), so a BCF output declares it.
    out = tmp_path / "edge.bcf"
    assert score(hyena_dir, EDGE_CASES, "-O", output_type, "-o", out) == 0
    assert [line.split("\t")[2] for line in records(out)] == bcftools("query", "-f", "%ID\n", EDGE_CASES)
