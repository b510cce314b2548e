"""Issue 21 regression matrix for `score` and `embed`: resume that checks its input, the same bytes
for any thread count, statuses for alleles that are not bases, output paths checked before any
work, no writes through planted symlinks, kills that leave nothing behind, BCF output, bytes
that are not UTF-8, short records."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from genossm.atomic import atomic_path, create_exclusive
from genossm.cli.main import Terminated, main
from genossm.infer.embed.store import partial_path
from genossm.infer.ranks import LocalRunner
from genossm.infer.score.chunks import ChunkScorer
from genossm.infer.score.resume_log import resume_log_path
from infer_helpers import EDGE_CASES, LAMBDA, LAMBDA_CONTIG, lambda_sequence, save_tiny_model, write_fasta, write_vcf

OTHER = {"A": "C", "C": "G", "G": "T", "T": "A"}


@pytest.fixture(scope="module")
def hyena_dir(tmp_path_factory):
    return save_tiny_model("hyena", tmp_path_factory.mktemp("models") / "hyena")


def snv_rows(count: int, start: int = 100, step: int = 37, name: str = "v"):
    sequence = lambda_sequence()
    return [(LAMBDA_CONTIG, pos, f"{name}{i}", sequence[pos - 1], OTHER[sequence[pos - 1]])
            for i, pos in enumerate(range(start, start + count * step, step))]


def lambda_vcf(path, rows):
    return write_vcf(path, {LAMBDA_CONTIG: 48502}, rows)


def score(hyena_dir, vcf, out, *extra, fasta=LAMBDA):
    return main(["-q", "score", str(vcf), "--fasta", str(fasta), "--model", str(hyena_dir),
                 "-o", str(out), "--chunk-size", "4", *extra])


def crash_after(monkeypatch, chunks: int, error=RuntimeError("simulated kill")):
    original = ChunkScorer.score
    calls = {"n": 0}

    def crashing(self, records):
        calls["n"] += 1
        if calls["n"] > chunks:
            raise error
        return original(self, records)

    monkeypatch.setattr(ChunkScorer, "score", crashing)
    return calls


def body(path) -> list[str]:
    result = subprocess.run(["bcftools", "view", "-H", str(path)], capture_output=True, check=True)
    return result.stdout.decode("utf-8", "surrogateescape").splitlines()


def query(path, fmt):
    result = subprocess.run(["bcftools", "query", "-f", fmt, str(path)], capture_output=True, text=True, check=True)
    return result.stdout.strip().split("\n")


# -- Wrong results ------------------------------------------------------------------------------


@pytest.mark.parametrize("change", ["records", "fasta", "stdin-records"])
def test_resume_refuses_an_input_changed_under_the_same_name(tmp_path, hyena_dir, monkeypatch, capsys, change):
    vcf = lambda_vcf(tmp_path / "in.vcf", snv_rows(20))
    fasta = write_fasta(tmp_path / "ref.fa", {LAMBDA_CONTIG: lambda_sequence()})
    out = tmp_path / "out.vcf.gz"
    source = "-" if change == "stdin-records" else vcf
    if source == "-":
        monkeypatch.setattr(sys, "stdin", _stdin(vcf))
    calls = crash_after(monkeypatch, 2)
    with pytest.raises(RuntimeError, match="simulated kill"):
        score(hyena_dir, source, out, fasta=fasta)
    assert resume_log_path(out).exists()
    if change == "fasta":
        sequence = lambda_sequence()
        write_fasta(fasta, {LAMBDA_CONTIG: sequence[:200] + OTHER[sequence[200]] + sequence[201:]})
        os.utime(fasta, ns=(1, 1))
    else:  # the same path (or stdin) now holds other records: 20 of them, other positions
        lambda_vcf(vcf, snv_rows(20, start=101))
    if source == "-":
        monkeypatch.setattr(sys, "stdin", _stdin(vcf))
    calls["n"] = -100
    capsys.readouterr()
    assert score(hyena_dir, source, out, "--resume", fasta=fasta) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--resume" in err and "delete it" in err
    assert not out.exists() and calls["n"] == -100  # refused before scoring anything


def _stdin(path):
    class Stdin:
        buffer = open(path, "rb")
    return Stdin()


def test_resume_with_the_same_input_still_gives_the_same_bytes(tmp_path, hyena_dir, monkeypatch):
    vcf = lambda_vcf(tmp_path / "in.vcf", snv_rows(20))
    assert score(hyena_dir, vcf, tmp_path / "full.vcf.gz") == 0
    crash_after(monkeypatch, 2)
    with pytest.raises(RuntimeError):
        score(hyena_dir, vcf, tmp_path / "resumed.vcf.gz")
    monkeypatch.undo()
    assert score(hyena_dir, vcf, tmp_path / "resumed.vcf.gz", "--resume") == 0
    assert body(tmp_path / "resumed.vcf.gz") == body(tmp_path / "full.vcf.gz")


def test_scores_are_the_same_bytes_for_any_thread_count(tmp_path, hyena_dir):
    vcf = lambda_vcf(tmp_path / "in.vcf", snv_rows(40))
    outputs = {}
    for threads in (1, 2, 3):
        out = tmp_path / f"t{threads}.vcf"
        assert score(hyena_dir, vcf, out, "--threads", str(threads)) == 0
        outputs[threads] = [line for line in out.read_bytes().split(b"\n")
                            if not line.startswith(b"##genossm_command")]  # names the output file
    assert outputs[1] == outputs[2] == outputs[3]
    assert len(outputs[1]) > 40


def test_threaded_runner_keeps_input_order_and_raises_the_first_error():
    runner = LocalRunner("cpu", workers=3)

    def slow_square(item):
        time.sleep(0.01 * (5 - item % 5))  # later items finish first
        return item * item

    assert [result for _, _, result in runner(enumerate(range(12)), slow_square)] == [i * i for i in range(12)]

    def failing(item):
        if item in (4, 7):
            raise ValueError(f"item {item}")
        return item

    seen = []
    with pytest.raises(ValueError, match="item 4"):
        for index, _, _ in runner(enumerate(range(12)), failing):
            seen.append(index)
    assert seen == [0, 1, 2, 3]


def test_alleles_that_are_not_bases_get_their_own_status_and_no_score(tmp_path, hyena_dir):
    sequence = lambda_sequence()[:3000]
    masked = sequence[:1500] + "N" * 200 + sequence[1700:]  # an N block in the genome
    fasta = write_fasta(tmp_path / "g.fa", {"chrT": masked})
    base = lambda pos: masked[pos - 1]  # noqa: E731
    rows = [
        ("chrT", 100, "ok1", base(100), OTHER[base(100)]),
        ("chrT", 200, "altN", base(200), "N"),
        ("chrT", 300, "iupac", base(300), "R"),
        ("chrT", 400, "same", base(400), base(400)),
        ("chrT", 500, "refN", "N", "A"),
        ("chrT", 1600, "genomeN", "N", "A"),  # inside the N block: the whole window is N
        ("chrT", 700, "badletter", base(700), "AXT"),
        ("chrT", 800, "multi", base(800), f"{OTHER[base(800)]},N"),
        ("chrT", 900, "ok2", base(900), OTHER[base(900)]),
    ]
    vcf = write_vcf(tmp_path / "v.vcf", {"chrT": len(masked)}, rows)
    out = tmp_path / "o.vcf.gz"
    assert main(["-q", "score", str(vcf), "--fasta", str(fasta), "--model", str(hyena_dir), "-o", str(out)]) == 0
    statuses = dict(line.split("\t") for line in query(out, "%ID\t%INFO/GENOSSM_STATUS\n"))
    assert statuses == {"ok1": "ok", "altN": "ambiguous_allele", "iupac": "ambiguous_allele", "same": "no_change",
                        "refN": "masked_reference", "genomeN": "masked_reference", "badletter": "invalid_allele",
                        "multi": "ok,ambiguous_allele", "ok2": "ok"}
    llrs = dict(line.split("\t") for line in query(out, "%ID\t%INFO/GENOSSM_LLR\n"))
    for name in ("altN", "iupac", "same", "refN", "genomeN", "badletter"):
        assert llrs[name] == ".", name
    assert llrs["multi"].endswith(",.") and np.isfinite(float(llrs["ok2"]))


# -- Output paths and files ---------------------------------------------------------------------


@pytest.mark.parametrize("case", ["missing-dir", "read-only-dir", "o-is-a-dir", "o-is-the-input", "o-is-the-fasta",
                                  "tsv-missing-dir", "tsv-is-o", "parent-is-a-file"])
def test_output_paths_are_checked_before_any_work(tmp_path, hyena_dir, monkeypatch, capsys, case):
    from genossm.models import checkpoint

    vcf = lambda_vcf(tmp_path / "in.vcf", snv_rows(3))
    (tmp_path / "afile").write_text("x")
    out, extra = str(tmp_path / "o.vcf.gz"), []
    if case == "missing-dir":
        out = str(tmp_path / "nodir" / "o.vcf.gz")
    elif case == "read-only-dir":
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode: False if os.fspath(path) == str(tmp_path)
                            else real_access(path, mode))
    elif case == "o-is-a-dir":
        out = str(tmp_path)
    elif case == "o-is-the-input":
        out = str(vcf)
    elif case == "o-is-the-fasta":
        out = str(LAMBDA)
    elif case == "tsv-missing-dir":
        extra = ["--tsv", str(tmp_path / "nodir" / "o.tsv")]
    elif case == "tsv-is-o":
        out = str(tmp_path / "o.vcf")
        extra = ["--tsv", out]
    elif case == "parent-is-a-file":
        out = str(tmp_path / "afile" / "o.vcf.gz")
    monkeypatch.setattr(checkpoint, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    before = sorted(os.listdir(tmp_path))
    code = main(["score", str(vcf), "--fasta", str(LAMBDA), "--model", str(hyena_dir), "-o", out, *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "error:" in err
    assert sorted(os.listdir(tmp_path)) == before
    assert vcf.read_text().startswith("##fileformat")


@pytest.mark.parametrize("case", ["dash", "missing-dir", "o-is-a-dir"])
def test_embed_output_paths_are_checked_before_any_work(tmp_path, hyena_dir, capsys, case):
    out = {"dash": "-", "missing-dir": str(tmp_path / "nodir" / "e.h5"), "o-is-a-dir": str(tmp_path)}[case]
    code = main(["embed", "--regions", f"{LAMBDA_CONTIG}:1-100", "--fasta", str(LAMBDA),
                 "--model", str(hyena_dir), "-o", out])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert not os.path.exists("-")
    if case == "dash":
        assert "stdout" in err


def test_mutagenesis_output_prefix_in_a_missing_directory(tmp_path, hyena_dir, capsys):
    code = main(["mutagenesis", "--region", f"{LAMBDA_CONTIG}:1-20", "--fasta", str(LAMBDA), "--model",
                 str(hyena_dir), "--out-prefix", str(tmp_path / "nodir" / "m")])
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_temporary_names_are_fresh_and_planted_symlinks_are_not_followed(tmp_path, hyena_dir):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "o.vcf.gz"
    # The names an older genossm used, and the resume log's fixed name, all point at the victim.
    for name in (f".o.vcf.gz.tmp{os.getpid()}", "o.vcf.gz.genossm-resume.tsv", ".e.h5.partial.h5"):
        (tmp_path / name).symlink_to(victim)
    vcf = lambda_vcf(tmp_path / "in.vcf", snv_rows(6))
    assert score(hyena_dir, vcf, out) == 0
    assert main(["-q", "embed", "--regions", f"{LAMBDA_CONTIG}:1-100", "--fasta", str(LAMBDA), "--model",
                 str(hyena_dir), "-o", str(tmp_path / "e.h5")]) == 0
    assert victim.read_text() == "precious\n"
    with atomic_path(tmp_path / "x.txt") as first, atomic_path(tmp_path / "y.txt") as second:
        assert first.exists() and first.name != f".x.txt.tmp{os.getpid()}" and first.parent == second.parent
        first.write_text("1"), second.write_text("2")
    with create_exclusive(tmp_path / "o.vcf.gz.genossm-resume.tsv") as handle:
        handle.write("new")
    assert victim.read_text() == "precious\n"


def test_resume_refuses_a_symlinked_partial_file(tmp_path, hyena_dir, capsys):
    victim = tmp_path / "victim.h5"
    victim.write_bytes(b"precious")
    partial_path(tmp_path / "e.h5").symlink_to(victim)
    code = main(["embed", "--regions", f"{LAMBDA_CONTIG}:1-100", "--fasta", str(LAMBDA), "--model",
                 str(hyena_dir), "-o", str(tmp_path / "e.h5"), "--resume"])
    assert code == 1 and "symlink" in capsys.readouterr().err
    assert victim.read_bytes() == b"precious"


def test_terminate_in_process_keeps_the_log_removes_temporaries_and_says_resume(tmp_path, hyena_dir, monkeypatch,
                                                                                capsys):
    vcf = lambda_vcf(tmp_path / "in.vcf", snv_rows(20))
    out = tmp_path / "o.vcf.gz"
    crash_after(monkeypatch, 2, Terminated())
    assert score(hyena_dir, vcf, out, "--tsv", str(tmp_path / "o.tsv")) == 143
    assert "--resume" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["in.vcf", resume_log_path(out).name]
    assert resume_log_path(out).read_text().count("#done") == 2


def test_sigterm_from_a_scheduler_leaves_only_the_resume_log(tmp_path, hyena_dir):
    vcf = lambda_vcf(tmp_path / "in.vcf", snv_rows(1200, start=20, step=40))
    out = tmp_path / "o.vcf.gz"
    command = [sys.executable, "-m", "genossm.cli.main", "score", str(vcf), "--fasta", str(LAMBDA), "--model",
               str(hyena_dir), "-o", str(out), "--chunk-size", "2", "--threads", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    log = resume_log_path(out)
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and "#done" in log.read_text()):
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err.decode()
    assert "--resume" in err.decode() and "Traceback" not in err.decode()
    assert sorted(os.listdir(tmp_path)) == ["in.vcf", log.name]
    assert main(["-q", "score", str(vcf), "--fasta", str(LAMBDA), "--model", str(hyena_dir), "-o", str(out),
                 "--chunk-size", "2", "--resume"]) == 0
    assert len(body(out)) == 1200 and not log.exists()


def test_sigterm_with_threads_stops_running_chunks_at_their_next_model_call(tmp_path, hyena_dir):
    """--threads 2: SIGTERM stops the chunks running in worker threads at their next model call
    (no waiting for them to finish), keeps the resume log, removes temporaries, exits 143 with the
    --resume hint; --resume then gives the bytes of an uninterrupted run."""
    vcf = lambda_vcf(tmp_path / "in.vcf", snv_rows(4800, start=20, step=10))
    out = tmp_path / "o.vcf.gz"
    options = ["--fasta", str(LAMBDA), "--model", str(hyena_dir), "--chunk-size", "1600", "--batch-size", "1",
               "--threads", "2"]
    command = [sys.executable, "-m", "genossm.cli.main", "score", str(vcf), "-o", str(out), *options]
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    log = resume_log_path(out)
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and "#done" in log.read_text()):
        time.sleep(0.01)
    first_chunk = time.monotonic() - started  # start-up and at least one whole chunk
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    stopping = time.monotonic() - signalled
    assert process.returncode == 143, err.decode()
    assert "--resume" in err.decode() and "Traceback" not in err.decode()
    assert sorted(os.listdir(tmp_path)) == ["in.vcf", log.name]
    done = log.read_text().count("#done")
    assert 1 <= done < 3
    print(f"first chunk after {first_chunk:.2f}s, stopped {stopping:.2f}s after SIGTERM")
    assert stopping < first_chunk / 4  # the running chunk (as long as the first) was not finished
    assert main(["-q", "score", str(vcf), "-o", str(out), "--resume", *options]) == 0
    assert not log.exists()
    assert main(["-q", "score", str(vcf), "-o", str(tmp_path / "full.vcf.gz"), *options]) == 0
    assert body(out) == body(tmp_path / "full.vcf.gz") and len(body(out)) == 4800


@pytest.mark.parametrize("strands", [[], ["--no-rc"]])
def test_embed_numbers_do_not_depend_on_threads(tmp_path, hyena_dir, strands):
    """embed --threads N: regions embedded by N workers with one torch thread each, so every
    dataset is identical to --threads 1."""
    bed = tmp_path / "r.bed"
    bed.write_text("".join(f"{LAMBDA_CONTIG}\t{start}\t{start + 700 + 37 * i}\tr{i}\t0\t{'+-'[i % 2]}\n"
                           for i, start in enumerate(range(0, 30000, 2500))))
    files = {}
    for threads in ("1", "2"):
        files[threads] = tmp_path / f"e{threads}.h5"
        assert main(["-q", "embed", "--regions", str(bed), "--fasta", str(LAMBDA), "--model", str(hyena_dir),
                     "-o", str(files[threads]), "--per-position", "--threads", threads, *strands]) == 0
    with h5py.File(files["1"]) as one, h5py.File(files["2"]) as two:
        names = []
        one.visit(names.append)
        datasets = [name for name in names if isinstance(one[name], h5py.Dataset)]
        assert datasets and any("per" in name.lower() or len(one[name].shape) >= 2 for name in datasets)
        for name in datasets:
            assert one[name].dtype == two[name].dtype and one[name].shape == two[name].shape, name
            assert np.array_equal(one[name][()], two[name][()]), name


def test_bcf_output_is_bcf(tmp_path, hyena_dir):
    assert main(["-q", "score", str(EDGE_CASES), "--fasta", str(LAMBDA), "--model", str(hyena_dir), "--skip-unknown",
                 "--max-allele-length", "16", "-o", str(tmp_path / "o.bcf")]) == 0
    assert main(["-q", "score", str(EDGE_CASES), "--fasta", str(LAMBDA), "--model", str(hyena_dir), "--skip-unknown",
                 "--max-allele-length", "16", "-o", str(tmp_path / "o.vcf")]) == 0
    assert gzip.open(tmp_path / "o.bcf").read(4) == b"BCF\x02"
    assert body(tmp_path / "o.bcf") == body(tmp_path / "o.vcf")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


HEADER = (b"##fileformat=VCFv4.2\n##contig=<ID=" + LAMBDA_CONTIG.encode() + b",length=48502>\n"
          b'##INFO=<ID=NOTE,Number=1,Type=String,Description="note">\n'
          b'##FORMAT=<ID=GT,Number=1,Type=String,Description="genotype">\n'
          b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\ts2\n")


def record(pos: int, ident: bytes, info: bytes, samples: bytes = b"0/1\t1/1") -> bytes:
    sequence = lambda_sequence()
    ref = sequence[pos - 1].encode()
    alt = OTHER[sequence[pos - 1]].encode()
    return b"\t".join([LAMBDA_CONTIG.encode(), str(pos).encode(), ident, ref, alt, b".", b".", info,
                       b"GT", samples]) + b"\n"


@pytest.mark.parametrize("suffix", [".vcf", ".vcf.gz", "-"])
def test_latin1_id_and_info_pass_through_byte_for_byte(tmp_path, hyena_dir, capfdbinary, suffix):
    vcf = tmp_path / "latin1.vcf"
    vcf.write_bytes(HEADER + record(100, b"caf\xe9", b"NOTE=Jos\xe9") + record(200, b"plain", b"NOTE=ok"))
    out = "-" if suffix == "-" else str(tmp_path / f"o{suffix}")
    assert main(["-q", "score", str(vcf), "--fasta", str(LAMBDA), "--model", str(hyena_dir), "-o", out,
                 "--tsv", str(tmp_path / "o.tsv")]) == 0
    text = capfdbinary.readouterr().out if out == "-" else (
        gzip.open(out).read() if suffix == ".vcf.gz" else open(out, "rb").read())
    assert b"\tcaf\xe9\t" in text and b"NOTE=Jos\xe9;GENOSSM_LLR=" in text
    assert b"\tcaf\xe9\t" in (tmp_path / "o.tsv").read_bytes()


def test_short_record_with_fewer_columns_than_samples_names_its_line(tmp_path, hyena_dir, capsys):
    vcf = tmp_path / "short.vcf"
    vcf.write_bytes(HEADER + record(100, b"ok", b".") + record(200, b"short", b".", samples=b"0/1"))
    code = main(["score", str(vcf), "--fasta", str(LAMBDA), "--model", str(hyena_dir), "-o", str(tmp_path / "o.vcf")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "short.vcf:7:" in err and not (tmp_path / "o.vcf").exists()


def test_htslib_warnings_appear_once(tmp_path, hyena_dir):
    vcf = tmp_path / "undeclared.vcf"
    vcf.write_bytes(HEADER.replace(b"##contig=<ID=" + LAMBDA_CONTIG.encode() + b",length=48502>\n", b"")
                    + record(100, b"a", b"."))
    result = subprocess.run([sys.executable, "-m", "genossm.cli.main", "score", str(vcf), "--fasta", str(LAMBDA),
                             "--model", str(hyena_dir), "-o", str(tmp_path / "o.vcf.gz")], capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr.count(b"is not defined in the header") == 1


def test_mistyped_option_gets_a_suggestion(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["score", "x.vcf", "--fasta", "ref.fa", "--theads", "2"])
    assert exit_info.value.code == 2 and "did you mean --threads" in capsys.readouterr().err


def test_embed_resume_refuses_a_changed_fasta(tmp_path, hyena_dir, capsys):
    sequence = lambda_sequence()[:2000]
    fasta = write_fasta(tmp_path / "g.fa", {"chrT": sequence})
    out = tmp_path / "e.h5"
    from genossm.infer.embed import embedder

    original, calls = embedder.embed_tokens, {"n": 0}

    def crash_after_one(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("simulated kill")
        return original(*args, **kwargs)

    command = ["-q", "embed", "--regions", "chrT:1-100", "chrT:201-300", "--fasta", str(fasta), "--model",
               str(hyena_dir), "-o", str(out)]
    embedder.embed_tokens = crash_after_one
    try:
        with pytest.raises(RuntimeError):
            main(command)
    finally:
        embedder.embed_tokens = original
    write_fasta(fasta, {"chrT": OTHER[sequence[0]] + sequence[1:]})
    assert main(command + ["--resume"]) == 1
    assert "drop --resume" in capsys.readouterr().err
    assert main(command) == 0  # without --resume: starts over
    with h5py.File(out) as store:
        assert store["embeddings"].shape[0] == 2
