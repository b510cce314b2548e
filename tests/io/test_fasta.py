"""FASTA access: plain and bgzip, index building (also read-only), names, bounds, bad inputs."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import pickle
import shutil
import stat
import zipfile
from pathlib import Path

import numpy as np
import pysam
import pytest

from genossm import tokenizer
from genossm.errors import InputError
from genossm.io import compression, fasta
from genossm.io.fasta import open_fasta

LAMBDA_NAME = "gi|9626243|ref|NC_001416.1|"
LAMBDA_LENGTH = 48502

# A multi-contig genome with UCSC names, soft-masking, Ns, IUPAC codes and a last line that is
# shorter than the others (line width 10).
SYNTHETIC = {
    "chr1": "ACGTACGTAC" "acgtnnNNAC" "GTRYACGTAA" "CCG",
    "chr2": "TTTTTGGGGG" "CCCCC",
    "chrM": "GATCACAGGT" "CTATCACCCT" "A",
}


def write_fasta(path: Path, records: dict[str, str], width: int = 10, newline: str = "\n") -> Path:
    with open(path, "w", newline="") as handle:
        for name, sequence in records.items():
            handle.write(f">{name} description{newline}")
            for start in range(0, len(sequence), width):
                handle.write(sequence[start : start + width] + newline)
    return path


@pytest.fixture
def lambda_fa(tmp_path, data_dir) -> Path:
    return Path(shutil.copy(data_dir / "lambda_virus.fa", tmp_path / "lambda.fa"))


@pytest.fixture
def lambda_bgz(lambda_fa) -> Path:
    target = lambda_fa.with_name("lambda.fa.gz")
    pysam.tabix_compress(os.fspath(lambda_fa), os.fspath(target))
    return target


@pytest.fixture
def synthetic(tmp_path) -> Path:
    return write_fasta(tmp_path / "synthetic.fa", SYNTHETIC)


# -- reading ----------------------------------------------------------------------------------
def test_plain_fasta_builds_index_and_reads(lambda_fa, data_dir):
    with open_fasta(lambda_fa) as genome:
        assert genome.contigs == {LAMBDA_NAME: LAMBDA_LENGTH}
        assert genome.fetch(LAMBDA_NAME, 0, 10) == "GGGCGGCGAC"
        assert genome.fetch(LAMBDA_NAME, 70, 75) == "TCATA"  # crosses the first line break
    assert lambda_fa.with_name("lambda.fa.fai").exists()
    whole = "".join(line.strip() for line in open(data_dir / "lambda_virus.fa") if not line.startswith(">"))
    with open_fasta(lambda_fa) as genome:  # second open uses the existing index
        assert genome.fetch(LAMBDA_NAME, 0, LAMBDA_LENGTH) == whole


def test_bgzip_fasta_matches_plain(lambda_fa, lambda_bgz):
    with open_fasta(lambda_fa) as plain, open_fasta(lambda_bgz) as packed:
        assert packed.contigs == plain.contigs
        for start, end in [(0, 1), (59, 61), (20_000, 20_123), (LAMBDA_LENGTH - 7, LAMBDA_LENGTH)]:
            assert packed.fetch(LAMBDA_NAME, start, end) == plain.fetch(LAMBDA_NAME, start, end)
    assert lambda_bgz.with_name("lambda.fa.gz.fai").exists()
    assert lambda_bgz.with_name("lambda.fa.gz.gzi").exists()
    assert not list(lambda_bgz.parent.glob(".genossm-*"))  # the temporary build folder is gone


def test_soft_masking_is_kept(synthetic):
    with open_fasta(synthetic) as genome:
        assert genome.fetch("chr1", 8, 16) == "ACacgtnn"
        assert genome.fetch_tokens("chr1", 8, 16).tolist() == [0, 1, 0, 1, 2, 3, 4, 4]


def test_multi_contig_order_and_iteration(synthetic):
    with open_fasta(synthetic) as genome:
        assert list(genome.contigs.items()) == [(name, len(seq)) for name, seq in SYNTHETIC.items()]
        contigs = genome.iter_contigs()
        assert next(contigs) == ("chr1", SYNTHETIC["chr1"])  # a generator: one contig at a time
        assert dict([("chr1", SYNTHETIC["chr1"]), *contigs]) == SYNTHETIC


@pytest.mark.parametrize("chunk_bytes", [1, 7, 10, 4 << 20])
def test_contig_stats_streamed_in_chunks(synthetic, chunk_bytes):
    with open_fasta(synthetic) as genome:
        stats = genome.contig_stats("1", chunk_bytes=chunk_bytes)
    sequence = SYNTHETIC["chr1"]
    assert stats.name == "chr1" and stats.length == len(sequence)
    assert stats.n_count == sum(base not in "ACGTacgt" for base in sequence) == 6
    assert stats.soft_masked == sum(base.islower() for base in sequence) == 6
    assert stats.n_fraction == pytest.approx(6 / len(sequence))


def test_iter_contig_stats_and_n_fraction(synthetic):
    with open_fasta(synthetic) as genome:
        assert [stats.name for stats in genome.iter_contig_stats()] == list(SYNTHETIC)
        assert genome.n_fraction("chr2") == 0.0


# -- coordinates ------------------------------------------------------------------------------
def test_pad_fills_with_n_outside_the_contig(synthetic):
    with open_fasta(synthetic) as genome:
        sequence = SYNTHETIC["chr2"]  # 15 bases
        assert genome.fetch("chr2", -3, 2, pad=True) == "NNN" + sequence[:2]
        assert genome.fetch("chr2", 13, 18, pad=True) == sequence[13:] + "NNN"
        assert genome.fetch("chr2", -2, 17, pad=True) == "NN" + sequence + "NN"
        assert genome.fetch("chr2", 20, 23, pad=True) == "NNN"
        assert genome.fetch("chr2", -5, -1, pad=True) == "NNNN"
        assert genome.fetch("chr2", 4, 4) == ""
        tokens = genome.fetch_tokens("chr2", -1, 1, pad=True)
        assert tokens.tolist() == [tokenizer.N, tokenizer.T]


@pytest.mark.parametrize("start,end", [(-1, 5), (10, 16), (20, 30)])
def test_out_of_bounds_names_contig_coordinates_and_length(synthetic, start, end):
    with open_fasta(synthetic) as genome, pytest.raises(InputError) as caught:
        genome.fetch("chr2", start, end)
    message = str(caught.value)
    assert f"chr2:[{start}, {end})" in message and "length 15" in message and "pad=True" in message
    assert str(synthetic) in message


def test_start_after_end_is_an_error_even_with_pad(synthetic):
    with open_fasta(synthetic) as genome, pytest.raises(InputError, match=r"chr2:\[5, 3\).*start is after end"):
        genome.fetch("chr2", 5, 3, pad=True)


def test_fetch_tokens_names_contig_and_position_of_a_bad_byte(tmp_path):
    path = write_fasta(tmp_path / "gapped.fa", {"seq1": "ACGTACGTAC" "GT-A"})
    with open_fasta(path) as genome:
        assert genome.fetch_tokens("seq1", 0, 12).tolist() == tokenizer.encode("ACGTACGTACGT").tolist()
        with pytest.raises(InputError) as caught:
            genome.fetch_tokens("seq1", 8, 14)
    message = str(caught.value)
    assert "'-' at position 13 of contig 'seq1' (1-based)" in message and str(path) in message


# -- contig names -----------------------------------------------------------------------------
@pytest.mark.parametrize("query,expected", [
    ("chr1", "chr1"), ("1", "chr1"), ("CHR2", "chr2"), ("MT", "chrM"), ("M", "chrM"),
    ("chrMT", "chrM"), ("mt", "chrM"),
])
def test_resolve_aliases(synthetic, query, expected):
    with open_fasta(synthetic) as genome:
        assert genome.resolve(query) == expected
        assert query in genome


def test_resolve_ensembl_names_from_ucsc_queries(tmp_path):
    path = write_fasta(tmp_path / "ensembl.fa", {"1": "ACGT", "X": "GGCC", "MT": "TTAA"})
    with open_fasta(path) as genome:
        assert [genome.resolve(name) for name in ("chr1", "chrX", "chrM", "x")] == ["1", "X", "MT", "X"]
        assert genome.fetch("chrM", 0, 2) == "TT"


def test_unknown_contig_lists_closest_names_and_count(synthetic):
    with open_fasta(synthetic) as genome, pytest.raises(InputError) as caught:
        genome.resolve("chr12")
    message = str(caught.value)
    assert "'chr12' is not in the genome (3 contigs)" in message
    assert "closest names: chr2, chr1" in message


def test_unknown_contig_with_nothing_close_lists_some_names(synthetic):
    with open_fasta(synthetic) as genome, pytest.raises(InputError, match="names start with: chr1, chr2, chrM"):
        genome.fetch("scaffold_99", 0, 1)


def test_case_insensitive_match_must_be_unique(tmp_path):
    path = write_fasta(tmp_path / "cases.fa", {"contigA": "AC", "CONTIGA": "GT"})
    with open_fasta(path) as genome, pytest.raises(InputError, match="ambiguous.*CONTIGA, contigA"):
        genome.resolve("ContigA")


# -- index location ---------------------------------------------------------------------------
def test_read_only_directory_builds_index_in_cache(tmp_path, lambda_bgz, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GENOSSM_CACHE", os.fspath(cache))
    install = tmp_path / "site-packages"
    install.mkdir()
    genome_path = Path(shutil.move(lambda_bgz, install / "lambda.fa.gz"))
    install.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if os.geteuid() == 0:  # root writes through permission bits: make the probe see read-only
        monkeypatch.setattr(fasta, "directory_is_writable", lambda directory: directory != install)
    try:
        with open_fasta(genome_path) as genome:
            assert genome.fetch(LAMBDA_NAME, 0, 5) == "GGGCG"
            assert genome.index_path.parent.parent == cache / "fai"
        assert sorted(os.listdir(install)) == ["lambda.fa.gz"]
        built = sorted(path.name for path in (cache / "fai").rglob("*") if path.is_file())
        assert built == ["lambda.fa.gz.fai", "lambda.fa.gz.gzi"]
        with open_fasta(genome_path) as genome:  # reuses the cached index
            assert genome.contigs == {LAMBDA_NAME: LAMBDA_LENGTH}
    finally:
        install.chmod(stat.S_IRWXU)


def test_no_writable_place_for_the_index(synthetic, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory should go")
    monkeypatch.setenv("GENOSSM_CACHE", os.fspath(blocker))
    monkeypatch.setattr(fasta, "directory_is_writable", lambda directory: False)
    with pytest.raises(InputError, match="set GENOSSM_CACHE to a writable directory"):
        open_fasta(synthetic)


def test_stale_index_is_rebuilt(synthetic):
    with open_fasta(synthetic):
        pass
    write_fasta(synthetic, {"chrZ": "ACGTAC"})
    fai = synthetic.with_name("synthetic.fa.fai")
    os.utime(fai, (1, 1))  # the index predates the FASTA
    with open_fasta(synthetic) as genome:
        assert genome.contigs == {"chrZ": 6}


def test_stale_bgzip_index_is_detected_and_rebuilt(tmp_path, caplog):
    """A .fai/.gzi newer than the bgzip FASTA but written for another version of it (other line
    widths, other sequence lengths) is found not to match, through the .gzi, and rebuilt."""
    rng = np.random.default_rng(3)
    first = {f"chr{i}": "".join(rng.choice(list("ACGT"), 30_000 + 97 * i)) for i in range(1, 4)}
    second = {name: sequence[: len(sequence) - 1_000] for name, sequence in first.items()}
    target = tmp_path / "genome.fa.gz"
    for records, width in ((first, 60), (second, 80)):
        plain = write_fasta(tmp_path / "genome.fa", records, width=width)
        pysam.tabix_compress(os.fspath(plain), os.fspath(target), force=True)
        if records is first:
            with open_fasta(target) as genome:
                assert genome.contigs == {name: len(seq) for name, seq in first.items()}
    for index in (tmp_path / "genome.fa.gz.fai", tmp_path / "genome.fa.gz.gzi"):
        os.utime(index, (target.stat().st_mtime + 10,) * 2)  # newer than the FASTA: only content tells
    assert not fasta._index_matches(target, compression.BGZF, tmp_path / "genome.fa.gz.fai",
                                    tmp_path / "genome.fa.gz.gzi")
    with caplog.at_level("WARNING"), open_fasta(target) as genome:
        assert genome.contigs == {name: len(seq) for name, seq in second.items()}
        for name, sequence in second.items():
            assert genome.fetch(name, len(sequence) - 50, len(sequence)) == sequence[-50:]
    assert "does not match" in caplog.text
    assert fasta._index_matches(target, compression.BGZF, tmp_path / "genome.fa.gz.fai",
                                tmp_path / "genome.fa.gz.gzi")


def test_index_check_reads_through_every_bgzip_block(tmp_path):
    """The matching index of a multi-block bgzip FASTA passes: offsets past the first block are
    read through the .gzi."""
    rng = np.random.default_rng(5)
    records = {f"c{i}": "".join(rng.choice(list("ACGT"), 50_000)) for i in range(6)}
    plain = write_fasta(tmp_path / "many.fa", records, width=70)
    target = tmp_path / "many.fa.gz"
    pysam.tabix_compress(os.fspath(plain), os.fspath(target))
    with open_fasta(target):
        pass
    assert fasta._index_matches(target, compression.BGZF, tmp_path / "many.fa.gz.fai",
                                tmp_path / "many.fa.gz.gzi")


def test_pickle_and_fork_reopen_the_handle(lambda_bgz):
    genome = open_fasta(lambda_bgz)
    copy = pickle.loads(pickle.dumps(genome))
    assert copy.fetch(LAMBDA_NAME, 100, 110) == genome.fetch(LAMBDA_NAME, 100, 110)
    first_handle = genome.handle
    genome._pid = -1  # what a forked child sees: the parent's handle must not be shared
    assert genome.handle is not first_handle
    assert genome.fetch(LAMBDA_NAME, 100, 110) == copy.fetch(LAMBDA_NAME, 100, 110)
    genome.close()
    copy.close()


# -- bad inputs -------------------------------------------------------------------------------
def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="not found"):
        open_fasta(tmp_path / "absent.fa")
    with pytest.raises(InputError, match="is a directory"):
        open_fasta(tmp_path)


def test_stdin_and_damaged_index(synthetic):
    with pytest.raises(InputError, match="must be a file"):
        open_fasta("-")
    fai = synthetic.with_name("synthetic.fa.fai")
    fai.write_text("chr1\tnot-a-number\n")
    with open_fasta(synthetic) as genome:  # detected as not matching the FASTA, and rebuilt
        assert genome.contigs
    assert "not-a-number" not in fai.read_text()


def test_empty_file(tmp_path):
    path = tmp_path / "empty.fa"
    path.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.fa: FASTA file is empty \(0 bytes\)"):
        open_fasta(path)
    path.write_bytes(b"\n  \n\n")
    with pytest.raises(InputError, match="only blank lines"):
        open_fasta(path)


def test_headers_without_sequence(tmp_path):
    path = tmp_path / "headers.fa"
    path.write_bytes(b">a\n>b\n")
    with pytest.raises(InputError, match="contains no sequences"):
        open_fasta(path)


@pytest.mark.parametrize("content,hint", [
    (b"\nACGTACGT\n>a\nACGT\n", "'ACGTACGT'"),
    (b"@read1\nACGT\n+\nIIII\n", "looks like FASTQ"),
    (b"##fileformat=VCFv4.2\n", "looks like a VCF"),
])
def test_not_a_fasta_names_line(tmp_path, content, hint):
    path = tmp_path / "other.fa"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        open_fasta(path)
    message = str(caught.value)
    line = 2 if content.startswith(b"\n") else 1
    assert message.startswith(f"{path}:{line}: not a FASTA file: expected a header line starting with '>'")
    assert hint in message


def test_crlf_is_read_without_carriage_returns(tmp_path):
    path = write_fasta(tmp_path / "windows.fa", SYNTHETIC, newline="\r\n")
    with open_fasta(path) as genome:
        assert genome.contigs == {name: len(seq) for name, seq in SYNTHETIC.items()}
        for name, sequence in SYNTHETIC.items():
            assert genome.fetch(name, 0, len(sequence)) == sequence
            assert genome.fetch(name, 5, 12) == sequence[5:12]


def test_mixed_line_endings_suggest_dos2unix(tmp_path):
    path = tmp_path / "mixed.fa"
    path.write_bytes(b">a\nACGTA\r\nACGTA\nAC\n")
    with pytest.raises(InputError) as caught:
        open_fasta(path)
    assert f"{path}:3:" in str(caught.value) and "dos2unix" in str(caught.value)


def test_old_mac_line_endings(tmp_path):
    path = tmp_path / "mac.fa"
    path.write_bytes(b">a\rACGT\rAC\r")
    with pytest.raises(InputError, match="CR only"):
        open_fasta(path)


def test_duplicate_contig_names(tmp_path):
    path = tmp_path / "dup.fa"
    path.write_bytes(b">chr1 first\nACGT\n>chr2\nGG\n>chr1 again\nTTTT\n")
    with pytest.raises(InputError) as caught:
        open_fasta(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:5: contig name 'chr1' appears twice (first at line 1)")
    assert not path.with_name("dup.fa.fai").exists()  # no index that would hide the problem next time


@pytest.mark.parametrize("content,line,words", [
    (b">a\nACGTAC\nACGT\nACGTAC\n", 4, "line 3 is shorter"),
    (b">a\nACGT\nACGTACGT\nAC\n", 3, "has 8 bases but the lines before it 4"),
    (b">a\nACGT\n\nACGT\n>b\nAC\n", 4, "line 3 is shorter than the lines before it (or blank)"),
])
def test_inconsistent_line_lengths(tmp_path, content, line, words):
    path = tmp_path / "ragged.fa"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        open_fasta(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: in contig 'a'")
    assert words in message and "seqkit seq -w 60" in message


def test_blank_lines_between_records_are_fine(tmp_path):
    path = tmp_path / "spaced.fa"
    path.write_bytes(b">a\nACGT\nAC\n\n>b\nGG\n\n\n")
    with open_fasta(path) as genome:
        assert genome.contigs == {"a": 6, "b": 2}


def test_plain_gzip_is_recompressed_to_bgzip_in_the_cache(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("GENOSSM_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "genome.fa.gz"
    path.write_bytes(gzip.compress(b">a\nACGT\n"))
    with open_fasta(path) as genome:
        assert genome.fetch("a", 0, 4) == "ACGT"
    assert "recompressing it once to bgzip" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "genome.fa.gz"]
    path.write_bytes(gzip.compress(b">a\nACGT\n")[:-6])  # cut short: a clear error, no copy
    with pytest.raises(InputError, match="truncated or corrupt"):
        open_fasta(path)


@pytest.mark.parametrize("suffix,compress,word", [
    (".xz", lzma.compress, "xz -d -k"),
    (".bz2", bz2.compress, "bzip2 -d -k"),
    (".zst", lambda data: b"\x28\xb5\x2f\xfd" + data, "zstd -d"),
])
def test_other_compressions_suggest_decompressing(tmp_path, suffix, compress, word):
    path = tmp_path / f"genome.fa{suffix}"
    path.write_bytes(compress(b">a\nACGT\n"))
    with pytest.raises(InputError, match=word):
        open_fasta(path)


def test_truncated_bgzip(lambda_bgz, tmp_path):
    data = lambda_bgz.read_bytes()
    without_eof = tmp_path / "cut_at_block.fa.gz"
    without_eof.write_bytes(data[: -len(compression.BGZF_EOF)])
    with pytest.raises(InputError, match="truncated"):
        open_fasta(without_eof)
    cut_inside = tmp_path / "cut_inside.fa.gz"
    cut_inside.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated"):
        open_fasta(cut_inside)


# -- helpers ----------------------------------------------------------------------------------
def _naive_headers(content: bytes) -> list[tuple[int, str]]:
    headers = []
    for number, line in enumerate(content.split(b"\n"), start=1):
        if line.startswith(b">"):
            words = line[1:].split(None, 1)
            headers.append((number, words[0].decode() if words else ""))
    return headers


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 5, 8, 13, 64, 4 << 20])
def test_scan_headers_matches_a_line_by_line_scan(tmp_path, monkeypatch, chunk_bytes):
    content = (b">first some description\nACGTACGTACGTACGTACGT\nACG\n>second\r\nAC\r\n\n"
               b">third_with_a_long_name_" + b"x" * 30 + b" d\n" + b"A" * 50 + b"\n>\n>last\nAC")
    path = tmp_path / "headers.fa"
    path.write_bytes(content)
    monkeypatch.setattr(fasta, "CHUNK_BYTES", chunk_bytes)
    assert list(fasta.scan_headers(path)) == _naive_headers(content)


def test_sniff_compression(tmp_path, lambda_bgz):
    samples = {
        "plain.fa": b">a\nACGT\n",
        "plain.gz": gzip.compress(b">a\n"),
        "data.xz": lzma.compress(b">a\n"),
        "data.bz2": bz2.compress(b">a\n"),
        "data.zst": b"\x28\xb5\x2f\xfd\x00",
    }
    for name, content in samples.items():
        (tmp_path / name).write_bytes(content)
    with zipfile.ZipFile(tmp_path / "data.zip", "w") as archive:
        archive.writestr("a.fa", ">a\n")
    expected = {"plain.fa": compression.NONE, "plain.gz": compression.GZIP, "data.xz": compression.XZ,
                "data.bz2": compression.BZIP2, "data.zst": compression.ZSTD, "data.zip": compression.ZIP}
    assert {name: compression.sniff_compression(tmp_path / name) for name in expected} == expected
    assert compression.sniff_compression(lambda_bgz) == compression.BGZF
    assert compression.has_bgzf_eof(lambda_bgz)
    assert not compression.has_bgzf_eof(tmp_path / "plain.gz")
    assert compression.sniff_bytes(b"") == compression.NONE


def test_fetch_tokens_match_tokenizer(lambda_bgz):
    with open_fasta(lambda_bgz) as genome:
        tokens = genome.fetch_tokens(LAMBDA_NAME, 1000, 1500)
        np.testing.assert_array_equal(tokens, tokenizer.encode(genome.fetch(LAMBDA_NAME, 1000, 1500)))
        assert tokens.dtype == np.uint8
