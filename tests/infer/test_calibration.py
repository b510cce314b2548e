"""`genossm calibrate` and GENOSSM_PCT: the stored CDF, the background, and the percentile in `score`."""

from __future__ import annotations

import json

import numpy as np
import pysam
import pytest

from genossm.cli.main import main
from genossm.infer.calibration.background import draw_background, variant_kinds
from genossm.infer.calibration.distribution import Calibration, load_calibration, summarise, variant_class
from genossm.infer.score.scorer import VariantScorer
from genossm.io.fasta import open_fasta
from genossm.models.checkpoint import load_model
from infer_helpers import LAMBDA, LAMBDA_CONTIG, lambda_sequence, save_tiny_model

C = LAMBDA_CONTIG
SEQ = lambda_sequence()


@pytest.mark.parametrize("ref, alt, expected", [
    ("A", "G", "snv"), ("AT", "A", "del:1"), ("ATTTT", "A", "del:4-6"), ("A", "A" + "C" * 15, "ins:11-20"),
    ("A", "A" + "C" * 40, "ins:11-20"), ("AC", "GT", None), ("A", "<DEL>", None), ("A", "*", None),
    ("CAG", "CG", "del:1"),
])
def test_variant_class(ref, alt, expected):
    assert variant_class(ref, alt) == expected


def test_percentile_is_the_empirical_cdf():
    values = np.arange(1, 5001, dtype=float)  # 1..5000: P(X <= x) = x / 5000 at the integers
    calibration = Calibration("llr", 64, True, {"snv": summarise(values)}, {})
    for x in (1, 7, 50, 2500, 4990, 5000):
        assert calibration.percentile(float(x), "snv") == pytest.approx(100 * x / 5000, abs=1e-9)
    assert calibration.percentile(0.5, "snv") == 0.0 and calibration.percentile(9e9, "snv") == 100.0
    assert calibration.percentile(3.0, "del:1") is None and calibration.percentile(None, "snv") is None
    stored = summarise(values)
    assert len(stored["value"]) < 1300  # a grid and the tails, not the whole background


def test_variant_kinds_balance_the_length_classes():
    kinds = variant_kinds(10, 1200, np.random.default_rng(0))
    counts = {}
    for kind, length in kinds:
        name = variant_class("A" * (length + 1), "A") if kind == "del" else (
            variant_class("A", "A" + "C" * length) if kind == "ins" else "snv")
        counts[name] = counts.get(name, 0) + 1
    assert counts.pop("snv") == 10 and set(counts.values()) == {100} and len(counts) == 12


def test_background_variants_match_the_genome_and_sit_in_tile_middles():
    with open_fasta(LAMBDA) as genome:
        drawn = draw_background([genome], 96, 200, 120, seed=3, per_tile=4)
    assert len(drawn) == 320
    for variant, pair in drawn:
        assert SEQ[variant.position0:variant.position0 + len(variant.ref)] == variant.ref
        assert 24 <= pair.offset < 72 and variant.klass is not None
        assert variant.ref[0] == variant.alt[0] or (len(variant.ref) == len(variant.alt) == 1)
    assert len({(v.position0, v.alt) for v, _ in drawn}) > 300  # random, hardly repeated


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    model_dir = save_tiny_model("hyena", tmp_path_factory.mktemp("models") / "hyena")
    assert main(["-q", "calibrate", "--model", str(model_dir), "--fasta", str(LAMBDA), "-n", "300",
                 "--indels", "120", "--seed", "5", "--window", "96", "--device", "cpu"]) == 0
    return model_dir


def test_calibrate_stores_the_scored_background_with_the_model(calibrated):
    config = json.loads((calibrated / "config.json").read_text())
    assert config["calibration"]["file"] == "calibration.json" and config["calibration"]["snvs"] == 300
    calibration = load_calibration(calibrated, config)
    assert calibration.window == 96 and calibration.both_strands
    # The stored SNV values are the llr of the same background, scored again here.
    model = load_model(calibrated)
    with open_fasta(LAMBDA) as genome:
        drawn = draw_background([genome], 96, 300, 120, seed=5)
    scores = VariantScorer(model).score([pair for variant, pair in drawn if variant.klass == "snv"])
    expected = np.sort([score.llr for score in scores])
    stored = calibration.classes["snv"]
    assert stored["count"] == 300
    ranks = [int(round(p * 300)) - 1 for p in stored["probability"]]  # P(X <= v) = (rank + 1) / n
    assert np.allclose(stored["value"], expected[ranks], atol=1e-5)
    assert calibration.classes["del:1"]["count"] == 10


def test_score_adds_the_percentile_and_only_with_the_calibrated_window(calibrated, tmp_path):
    source = tmp_path / "calls.vcf"
    rows = [(1000, SEQ[999], "A" if SEQ[999] != "A" else "C"), (2000, SEQ[1999:2002], SEQ[1999]),
            (3000, SEQ[2999:3001], "GT")]
    source.write_text(f"##fileformat=VCFv4.2\n##contig=<ID={C},length={len(SEQ)}>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\t"
                      "FILTER\tINFO\n" + "".join(f"{C}\t{p}\t.\t{r}\t{a}\t.\t.\t.\n" for p, r, a in rows))
    out = tmp_path / "out.vcf"
    assert main(["-q", "score", str(source), "--fasta", str(LAMBDA), "--model", str(calibrated), "--window", "96",
                 "-o", str(out)]) == 0
    calibration = load_calibration(calibrated, json.loads((calibrated / "config.json").read_text()))
    with pysam.VariantFile(str(out)) as reader:
        assert "GENOSSM_PCT" in reader.header.info
        # INFO/GENOSSM (bcftools +split-vep -a GENOSSM) carries the percentile too
        assert reader.header.info["GENOSSM"].description.endswith("Format: Allele|LLR|EMBDIST|PCT|STATUS|Consequence")
        records = list(reader)
    for record, klass in zip(records, ("snv", "del:2", None)):
        llr = record.info["GENOSSM_LLR"][0]
        pct = record.info.get("GENOSSM_PCT", (None,))[0]
        expected = calibration.percentile(llr, klass)
        assert (pct is None) if expected is None else pct == pytest.approx(expected, abs=1e-3)
        allele, _, _, structured_pct, status, _ = record.info["GENOSSM"][0].split("|")
        assert allele == record.alts[0] and status == record.info["GENOSSM_STATUS"][0]
        assert (structured_pct == "") if pct is None else float(structured_pct) == pytest.approx(pct, rel=1e-5)
    assert main(["-q", "score", str(source), "--fasta", str(LAMBDA), "--model", str(calibrated), "-o", str(tmp_path / "other.vcf")]) == 0
    assert "GENOSSM_PCT" not in (tmp_path / "other.vcf").read_text()


def test_calibrate_checks_its_options_before_loading(tmp_path, capsys):
    model_dir = save_tiny_model("hyena", tmp_path / "m")
    assert main(["-q", "calibrate", "--model", str(model_dir), "--fasta", str(LAMBDA), "-n", "5"]) == 2
    assert "at least 100" in capsys.readouterr().err
    assert main(["-q", "calibrate", "--model", str(model_dir), "--fasta", str(LAMBDA), "--window", "32"]) == 2
    assert "cannot hold" in capsys.readouterr().err
    assert not (model_dir / "calibration.json").exists()


def test_max_seconds_fails_loudly_and_writes_nothing(tmp_path, capsys):
    model_dir = save_tiny_model("hyena", tmp_path / "m")
    config_before = (model_dir / "config.json").read_bytes()
    assert main(["-q", "calibrate", "--model", str(model_dir), "--fasta", str(LAMBDA), "-n", "300", "--indels", "0",
                 "--window", "96", "--device", "cpu", "--max-seconds", "0.001"]) == 1
    err = capsys.readouterr().err
    assert "past --max-seconds 0.001" in err and "nothing was written" in err
    assert not (model_dir / "calibration.json").exists()
    assert (model_dir / "config.json").read_bytes() == config_before
    assert main(["-q", "calibrate", "--model", str(model_dir), "--fasta", str(LAMBDA), "--max-seconds", "0"]) == 2
    assert "--max-seconds must be positive" in capsys.readouterr().err


def test_calibrate_logs_rate_and_time_left_and_records_them(tmp_path, caplog):
    model_dir = save_tiny_model("hyena", tmp_path / "m")
    with caplog.at_level("INFO", logger="genossm.infer.calibration"):
        assert main(["calibrate", "--model", str(model_dir), "--fasta", str(LAMBDA), "-n", "1200", "--indels", "0",
                     "--window", "96", "--device", "cpu", "--batch-size", "8", "--max-seconds", "600"]) == 0
    tenths = [record.getMessage() for record in caplog.records if "variants/s," in record.getMessage()]
    # calls of 512 variants: 512, 1024, 1200 done, each passing at least one tenth
    assert [message.split()[1] for message in tenths] == ["512/1200", "1024/1200", "1200/1200"]
    assert all(message.endswith("s left") for message in tenths)
    source = json.loads((model_dir / "calibration.json").read_text())["source"]
    assert source["batch_size"] == 8 and source["variants_per_second"] > 0
    seconds = source["score_seconds"]  # rounded to 0.1 s
    assert 1200 / (seconds + 0.06) <= source["variants_per_second"] <= 1200 / max(seconds - 0.06, 1e-3)


def test_info_shows_the_calibration_entry(calibrated, capsys):
    assert main(["info", str(calibrated)]) == 0
    out = capsys.readouterr().out
    assert "calibration.snvs: 300" in out and "calibration.window: 96" in out


def test_the_progress_bar_moves_within_a_scorer_call(tmp_path, monkeypatch):
    updates = []

    class Bar:
        n = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, count):
            assert count >= 0
            self.n += count
            updates.append(self.n)

    monkeypatch.setattr("genossm.progress.progress", lambda **kwargs: Bar())
    model_dir = save_tiny_model("hyena", tmp_path / "m")
    assert main(["-q", "calibrate", "--model", str(model_dir), "--fasta", str(LAMBDA), "-n", "400", "--indels", "0",
                 "--window", "96", "--device", "cpu", "--batch-size", "4"]) == 0
    moved = [n for n in updates if 0 < n < 400]
    assert updates[-1] == 400 and len(set(moved)) >= 10  # one call of 400 variants, the bar moved within it
    assert updates == sorted(updates)
