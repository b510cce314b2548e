"""`genossm info` end to end, and the matrix of bad inputs: each gives exit code 1 and a one-line
message naming the file (a traceback only with --debug); records that are flagged rather than
fatal are all kept."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import types

import pysam
import pysam.bcftools
import pytest

from genossm.cli.main import main
from genossm.errors import InputError
from genossm.io import vcf
from genossm.io.fasta import open_fasta
from genossm.io.intervals import read_bed

LAMBDA = "gi|9626243|ref|NC_001416.1|"


def info_json(capsys, *paths) -> list[dict]:
    assert main(["info", "--json", *map(str, paths)]) == 0
    return json.loads(capsys.readouterr().out)


def fasta_lengths(path) -> dict[str, int]:
    """Contig lengths read with plain Python (the independent view of the file)."""
    lengths, name = {}, None
    for line in open(path):
        line = line.rstrip("\r\n")
        if line.startswith(">"):
            name = line[1:].split()[0]
            lengths[name] = 0
        else:
            lengths[name] += len(line)
    return lengths


@pytest.fixture
def fasta(data_dir, tmp_path):
    path = tmp_path / "lambda_virus.fa"
    shutil.copy(data_dir / "lambda_virus.fa", path)
    return path


def test_info_fasta_plain_and_bgzip(capsys, fasta, tmp_path):
    bgz = tmp_path / "lambda_virus.fa.gz"
    pysam.tabix_compress(str(fasta), str(bgz))
    plain, compressed = info_json(capsys, fasta, bgz)
    expected = fasta_lengths(fasta)
    for description in (plain, compressed):
        assert description["type"] == "FASTA"
        assert {c["name"]: c["length"] for c in description["contigs"]} == expected
        assert description["total_length"] == sum(expected.values())
        sequence = "".join(line.strip() for line in open(fasta) if not line.startswith(">"))
        assert description["n_fraction"] == pytest.approx(sequence.upper().count("N") / len(sequence))


def test_info_vcf_counts(capsys, data_dir):
    [description] = info_json(capsys, data_dir / "edge_cases.vcf")
    assert description["type"] == "VCF"
    records = list(vcf.read_variants(data_dir / "edge_cases.vcf"))
    assert description["records"] == len(records)
    for kind in vcf.KINDS:
        assert description["kinds"][kind] == sum(v.kind == kind for r in records for v in r.variants)


def test_info_bam(capsys, data_dir):
    [description] = info_json(capsys, data_dir / "lambda_reads.bam")
    assert description["type"] == "BAM" and description["contigs"] == {LAMBDA: 48502}
    total = int(pysam.samtools.view("-c", str(data_dir / "lambda_reads.bam")))
    assert description["reads_mapped"] + description["reads_unmapped"] == total


def test_info_table(capsys, fasta, data_dir):
    assert main(["info", str(fasta), str(data_dir / "edge_cases.vcf"), str(data_dir / "lambda_reads.bam")]) == 0
    out = capsys.readouterr().out
    assert f"{fasta}: FASTA, 1 contig, 48,502 bp" in out
    assert "edge_cases.vcf: VCF, 18 records" in out and "SYMBOLIC" in out
    assert "lambda_reads.bam: BAM," in out and "sorted by coordinate, indexed" in out


def test_info_checkpoint_directory(capsys, tmp_path, monkeypatch):
    checkpoint = tmp_path / "model"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text("{}")
    # Without describe_checkpoint (an older models package): a clear InputError.
    monkeypatch.setitem(sys.modules, "genossm.models.checkpoint", types.ModuleType("genossm.models.checkpoint"))
    assert main(["info", str(checkpoint)]) == 1
    assert "not a checkpoint this version can read" in capsys.readouterr().err
    # With it: its dict is what info shows.
    fake = types.ModuleType("genossm.models.checkpoint")
    fake.describe_checkpoint = lambda path: {"architecture": "hyena", "parameters": 1234}
    monkeypatch.setitem(sys.modules, "genossm.models.checkpoint", fake)
    [description] = info_json(capsys, checkpoint)
    assert description == {"path": str(checkpoint), "type": "checkpoint", "architecture": "hyena", "parameters": 1234}


# -- the bad input matrix ------------------------------------------------------------------------


def write_bytes(path, data: bytes):
    path.write_bytes(data)
    return path


def bad_inputs(tmp_path, data_dir) -> dict:
    bgz = tmp_path / "whole.fa.gz"
    pysam.tabix_compress(str(data_dir / "lambda_virus.fa"), str(bgz))
    return {
        "empty": (write_bytes(tmp_path / "empty.fa", b""), "empty file"),
        "not-a-fasta": (write_bytes(tmp_path / "notes.fa", b"hello world\n"), "cannot tell the file type"),
        "duplicate-contigs": (write_bytes(tmp_path / "dup.fa", b">a\nACGT\n>a\nACGT\n"), "twice"),
        "truncated-bgzip": (write_bytes(tmp_path / "cut.fa.gz", bgz.read_bytes()[:3000]), "truncated"),
        "vcf-without-header": (write_bytes(tmp_path / "nohead.vcf", f"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n{LAMBDA}\t5\t.\tA\tC\t.\t.\t.\n".encode()), "##fileformat"),
        "directory": ((tmp_path / "somedir", None), "config.json"),
        "missing": (tmp_path / "absent.vcf", "no such file"),
    }


@pytest.mark.parametrize("case", ["empty", "not-a-fasta", "duplicate-contigs",
                                  "truncated-bgzip", "vcf-without-header", "directory", "missing"])
def test_bad_input_exit_code_and_message(capsys, tmp_path, data_dir, case):
    path, expected = bad_inputs(tmp_path, data_dir)[case]
    if isinstance(path, tuple):
        path = path[0]
        path.mkdir()
    assert main(["info", str(path)]) == 1
    captured = capsys.readouterr()
    error_lines = [line for line in captured.err.splitlines() if line.startswith("genossm info: error:")]
    assert len(error_lines) == 1
    assert str(path) in error_lines[0] and expected in error_lines[0]
    assert "Traceback" not in captured.err and captured.out == ""


def test_crlf_fasta_is_read_with_the_right_lengths(capsys, tmp_path):
    path = write_bytes(tmp_path / "crlf.fa", b">a desc\r\nACGTN\r\nACG\r\n>b\r\nTT\r\n")
    [description] = info_json(capsys, path)
    assert {c["name"]: c["length"] for c in description["contigs"]} == {"a": 8, "b": 2}
    assert description["contigs"][0]["n_fraction"] == pytest.approx(1 / 8)


def test_bed_end_before_start(tmp_path):
    path = write_bytes(tmp_path / "bad.bed", b"chr1\t10\t20\nchr1\t50\t40\n")
    with pytest.raises(InputError) as caught:
        read_bed(path)
    assert caught.value.line == 2 and caught.value.path == str(path)


def test_flagged_records_are_kept_not_dropped(data_dir, tmp_path):
    """Unknown contig, REF mismatch, multi-allelic and symbolic records: flagged, all written."""
    fasta = tmp_path / "lambda_virus.fa"
    shutil.copy(data_dir / "lambda_virus.fa", fasta)
    out = tmp_path / "flagged.vcf.gz"
    with open_fasta(fasta) as genome, vcf.VcfReader(data_dir / "edge_cases.vcf") as reader, \
            vcf.VcfWriter(out, reader.header, [("STATUS", "A", "String", "check_ref or kind")]) as writer:
        for record in reader:
            statuses = [vcf.check_ref(v, genome) or v.kind for v in record.variants]
            writer.write(record, {"STATUS": statuses})
    body = pysam.bcftools.view("-H", str(out)).splitlines()
    assert len(body) == sum(1 for line in open(data_dir / "edge_cases.vcf") if not line.startswith("#"))
    rows = dict(line.split("\t", 1) for line in pysam.bcftools.query("-f", "%ID\t%INFO/STATUS\n", str(out)).splitlines())
    assert rows["unk1"] == "unknown_contig" and rows["nohdr1"] == "unknown_contig"
    assert rows["mismatch1"] == "ref_mismatch" and rows["pastend1"] == "out_of_bounds"
    assert rows["multi1"] == "SNV,DEL,INS" and rows["sv1"] == "SYMBOLIC"


# -- as a user runs it ---------------------------------------------------------------------------


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "genossm.cli.main", *args],
                          capture_output=True, text=True, timeout=120)


def test_subprocess_error_is_one_line_and_debug_shows_traceback(tmp_path):
    path = write_bytes(tmp_path / "nohead.vcf",
                       f"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n{LAMBDA}\t5\t.\tA\tC\t.\t.\t.\n".encode())
    result = run_cli("info", str(path))
    assert result.returncode == 1 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"genossm info: error: {path}:1: not a VCF: expected the first line to be "
                           "'##fileformat=VCFv4.x', found '#CHROM")
    debug = run_cli("info", "--debug", str(path))
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "InputError" in debug.stderr


def test_subprocess_success_and_usage_error(data_dir):
    result = run_cli("info", "--json", str(data_dir / "edge_cases.vcf"))
    assert result.returncode == 0
    assert json.loads(result.stdout)[0]["records"] == 18
    assert run_cli("info").returncode == 2  # missing FILE: argparse usage error


# -- issue 21: genome files and what a new user meets --------------------------------------------


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENOSSM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_info_reports_invalid_fasta_bytes_with_position(capsys, tmp_path):
    path = write_bytes(tmp_path / "bad.fa", b">a\nACGTN\n>b\nACGTACGXTA\nAC*T\n")
    [description] = info_json(capsys, path)
    contigs = {c["name"]: c for c in description["contigs"]}
    assert "invalid" not in contigs["a"] and contigs["a"]["n_fraction"] == pytest.approx(1 / 5)
    assert contigs["b"]["invalid"] == {"count": 2, "first_position": 8, "first_character": "X"}
    assert contigs["b"]["n_fraction"] == 0.0  # invalid bytes are not counted as N
    assert main(["info", str(path)]) == 0
    assert "problem: 2 byte(s) that are no nucleotide code, first 'X' at b:8" in capsys.readouterr().out


@pytest.mark.parametrize("change", ["line-width", "longer-header"])
def test_stale_fai_is_detected_and_rebuilt(capsys, tmp_path, caplog, change):
    path = write_bytes(tmp_path / "g.fa", b">a\n" + b"ACGTACGTAC\n" * 3 + b">b\n" + b"TTTTGGGGCC\n" * 2)
    with open_fasta(path) as genome:
        assert genome.fetch("b", 0, 4) == "TTTT"
    # The FASTA is rewritten (rewrapped, or renamed contigs) but the old index is kept, newer than it.
    if change == "line-width":
        path.write_bytes(b">a\n" + b"ACGTACGTACACGTA\nCGTACACGTACGTAC\n" + b">b\n" + b"TTTTGGGGCCTTTTG\nGGGCC\n")
    else:
        path.write_bytes(b">a_longer_name\n" + b"ACGTACGTAC\n" * 3 + b">b\n" + b"TTTTGGGGCC\n" * 2)
    fai = tmp_path / "g.fa.fai"
    fai.touch()
    with open_fasta(path) as genome:
        assert genome.fetch("b", 0, 8) == "TTTTGGGG"
    assert "does not match" in caplog.text


def test_info_sample_and_its_index_files_go_to_the_cache(capsys, tmp_path, monkeypatch, cache):
    import genossm.resources
    from genossm.infer.runtime import sample_or_path

    descriptions = info_json(capsys, "sample")
    assert [d["type"] for d in descriptions] == ["FASTA", "VCF"]
    # A package directory holding no index: opening its FASTA writes nothing there.
    package = tmp_path / "package"
    (package / "sample").mkdir(parents=True)
    shutil.copy(sample_or_path("sample", "fasta"), package / "sample" / "sample_genome.fa.gz")
    monkeypatch.setattr(genossm.resources, "RESOURCES", package)
    with open_fasta(package / "sample" / "sample_genome.fa.gz") as genome:
        assert genome.contigs
    assert sorted(p.name for p in (package / "sample").iterdir()) == ["sample_genome.fa.gz"]
    assert list(cache.rglob("*.fai"))


def test_plain_gzip_reference_is_recompressed_once_to_bgzip_in_the_cache(capsys, tmp_path, data_dir, cache, caplog):
    plain = write_bytes(tmp_path / "ref.fa.gz", gzip.compress((data_dir / "lambda_virus.fa").read_bytes()))
    [description] = info_json(capsys, plain)
    assert description["total_length"] == 48502
    assert "recompressing it once to bgzip" in caplog.text and str(cache) in caplog.text
    copies = list(cache.rglob("*.bgz.gz"))
    assert len(copies) == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["cache", "ref.fa.gz"]
    caplog.clear()
    with open_fasta(plain) as genome:
        assert genome.fetch(LAMBDA, 0, 10) == (data_dir / "lambda_virus.fa").read_text().split("\n")[1][:10]
    assert "recompressing" not in caplog.text  # once


def test_info_on_a_lightning_checkpoint_says_genossm_convert(capsys, tmp_path):
    import torch

    from genossm.models.config import ModelConfig

    config = ModelConfig(arch="hyena", d_model=8, n_layers=1, max_length=32)
    ckpt = tmp_path / "last.ckpt"
    torch.save({"state_dict": {"model.w": torch.zeros(2)}, "global_step": 7, "epoch": 0,
                "hyper_parameters": {"model_config": config.to_dict()}}, ckpt)
    [description] = info_json(capsys, ckpt)
    assert description["type"] == "Lightning checkpoint" and description["global_step"] == 7
    assert "genossm convert" in description["note"] and "unzip" not in json.dumps(description)
    assert main(["info", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert "genossm convert" in out and "hyena, causal, d_model 8" in out


def test_info_reads_genossms_own_hdf5_and_checkpoints_readably(capsys, tmp_path):
    import h5py
    import numpy as np

    from genossm.models.checkpoint import save_model
    from genossm.models.config import ModelConfig
    from genossm.models.lm import build_model

    store = tmp_path / "e.h5"
    with h5py.File(store, "w") as out:
        out.create_dataset("embeddings", data=np.zeros((2, 4), dtype=np.float32))
        out.create_dataset("regions/chrom", data=np.array(["a", "b"], dtype=object), dtype=h5py.string_dtype())
        out.attrs["model"] = "bundled"
    [description] = info_json(capsys, store)
    assert description["type"] == "embeddings" and description["regions"] == 2
    assert description["embedding_width"] == 4 and "0-based" in description["note"]
    model_dir = save_model(build_model(ModelConfig(arch="hyena", d_model=8, n_layers=1, max_length=32)),
                           tmp_path / "model")
    assert main(["info", str(model_dir), str(store)]) == 0
    out = capsys.readouterr().out
    assert "checkpoint, hyena, causal, d_model 8" in out and "model.d_model: 8" in out
    assert "{" not in out and "embedding_width: 4" in out
