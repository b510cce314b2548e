"""Published HyenaDNA and Caduceus models in genossm: the goldens under bf16, SNV scoring speed of a
HyenaDNA-large-1m-shaped model against the peer-style loop, and a Caduceus-131k region embedding.

Sections (`--sections`, default all three):

golden   Every golden checkpoint (`--golden DIR`: the peers' own random-weight checkpoints and
         outputs, as in ../shared/golden or tests/fixtures/published) converted with
         `convert_published` and run on `--device`: relative L2 error of the logits against the
         peer's stored logits in float32, under bf16 autocast (target <= 2e-3 on the GPU), and, as
         the floor bf16 itself sets, in float32 with only the weights rounded to bf16.

scoring  A HyenaDNA model of the large-1m shape (`--shape large-1m`: d_model 256, 8 layers, l_max
         2^20 + 2; `--shape golden`: the golden's own tiny config) with random weights, built
         from the Hugging Face config through the converter's config mapping, saved as a genossm
         checkpoint and loaded by the loader `genossm score` uses. `--snvs` SNVs in a synthetic
         genome (random bases, 41% GC), one every `--spacing` bases on average (exponential gaps:
         a single genome's call set has about one SNV per 1-2 kb), scored in windows of
         `--context` bases, forward strand (`--both-strands`: both, for every path):
           baseline      the peer-style loop: for each batch of SNVs, the ref and alt windows of
                         the full context, one forward, log P(alt window) - log P(ref window)
                         (and the log-ratio at the SNV, for the site gate);
           product       genossm's scoring path as `genossm score` runs it, default scores (llr,
                         embdist): a ChunkScorer with the job's settings, chunk by chunk (shared
                         reference pass per tile, batched, deduplicated windows; on a GPU full
                         alt windows, on a CPU the suffix cache below);
           suffix_reuse  the same with the Hyena suffix cache (alt windows from the variant on,
                         on top of the cached reference pass): `VariantScorer(reuse_prefix_state=
                         True)`, the library option `genossm score` leaves off on a GPU;
           product_site  `genossm score --score site`: log P(alt) - log P(ref) at the SNV given the
                         bases before it, read from the reference pass alone (one pass per tile
                         for all its SNVs).
         A gate first checks that product and suffix_reuse give the baseline's LLRs and that
         product_site gives the baseline's log-ratio at the SNV; nothing is timed otherwise. Each
         path then scores the SNVs in genome order for at most `--seconds-per-path` seconds
         (a stationary rate: the SNVs are uniform) and reports SNVs scored, seconds and SNVs/s.

embed    A Caduceus model of the 131k shape (d_model 256, 16 layers; Ph and/or PS, `--embed-models`)
         with random weights, converted format, embeds one `--region`-base region through
         `genossm embed`'s library path (`embed_tokens_region`, both strands by default, chunks of
         `max_pass_length`): seconds, and for PS the difference a forward-only pass makes.

Runs on CUDA or CPU; imports nothing that needs pysam, pyfaidx or biopython (the genome and the
VCF records are built in memory).

    python benchmarks/published_models.py --device cuda --golden GOLDEN \\
        --out benchmarks/results/published_models_h200.json
    python benchmarks/published_models.py --device cpu --sections embed --embed-models ph \\
        --out benchmarks/results/published_models_cpu.json
    python benchmarks/published_models.py --device cpu --shape golden --context 256 --snvs 48 \\
        --spacing 30 --region 512 --embed-shape golden      # the CI size
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from common import device_facts, emit_report, relative_error

from genossm.errors import InputError
from genossm.infer.runtime import load_inference_model
from genossm.infer.score.chunks import ChunkScorer, numbered_chunks
from genossm.infer.score.definitions import DEFAULT_SCORES
from genossm.infer.score.job import ScoreJob, score_settings
from genossm.infer.score.scorer import VariantScorer
from genossm.infer.score.tiles import TileLayout
from genossm.io import vcf
from genossm.models.checkpoint import load_model, save_model
from genossm.models.lm import build_model
from genossm.models.published import caduceus_config, convert_published, hyenadna_config
from genossm.tokenizer import BASES, NUM_BASES, encode

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_GOLDEN = ROOT / "tests" / "fixtures" / "published"
SECTIONS = ("golden", "scoring", "embed")
BF16_TARGET = 2e-3

# (id, folder under the golden directory, files to copy (None: the folder as is), logits file)
GOLDEN_CASES = [
    ("hyenadna-hf-safetensors", "hyenadna", ["config.json", "model.safetensors"], "hyenadna/logits.npy"),
    ("hyenadna-hf-bin", "hyenadna", ["config.json", "pytorch_model.bin"], "hyenadna/logits.npy"),
    ("hyenadna-lightning", "hyenadna/lightning", None, "hyenadna/lightning/logits_tied_head.npy"),
    ("caduceus-ph", "caduceus_ph", None, "caduceus_ph/logits.npy"),
    ("caduceus-ps", "caduceus_ps", None, "caduceus_ps/logits.npy"),
]

# The published shapes, as changes to the goldens' Hugging Face configs (which carry every other
# key exactly as the peers' code writes it).
HYENADNA_LARGE_1M = {"d_model": 256, "n_layer": 8, "d_inner": 1024, "max_seq_len": 2**20 + 2, "filter_order": 64}
CADUCEUS_131K = {"d_model": 256, "n_layer": 16}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------------------- golden
def golden_check(golden: Path, device: torch.device, workdir: Path) -> list[dict]:
    """Per golden: relative L2 error of the logits in fp32, under bf16 autocast, and with only the
    weights rounded to bf16 (fp32 compute)."""
    rows = []
    for case, folder, files, logits_file in GOLDEN_CASES:
        source = golden / folder
        if files is not None:
            source = workdir / f"golden-{case}"
            source.mkdir()
            for name in files:
                shutil.copy(golden / folder / name, source / name)
        model = load_model(convert_published(source, workdir / f"converted-{case}"), device=device).eval()
        ids = torch.from_numpy(np.load(golden / folder.split("/")[0] / "input_ids.npy")).to(device)
        expected = torch.from_numpy(np.load(golden / logits_file))
        with torch.no_grad():
            fp32 = model(ids).cpu()
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
                bf16 = model(ids).float().cpu()
            rounded = copy.deepcopy(model)
            for parameter in rounded.parameters():
                parameter.copy_(parameter.to(torch.bfloat16).float())
            weights_bf16 = rounded(ids).cpu()
        bf16_error = relative_error(bf16, expected)
        rows.append({
            "case": case, "tokens": int(ids.shape[1]),
            "fp32_relative_l2": relative_error(fp32, expected),
            "bf16_autocast_relative_l2": bf16_error,
            "bf16_weights_fp32_compute_relative_l2": relative_error(weights_bf16, expected),
            "bf16_target": BF16_TARGET, "bf16_meets_target": bf16_error <= BF16_TARGET,
        })
        print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


# ---------------------------------------------------------------------------------------- models
def shaped_config(golden: Path, folder: str, shape: str, changes: dict) -> dict:
    """The golden's Hugging Face config.json, with the published shape's sizes unless shape is 'golden'."""
    config = json.loads((golden / folder / "config.json").read_text())
    if shape != "golden":
        config.update(changes)
    return config


def saved_random_model(config, directory: Path, device: torch.device, seed: int = 0):
    """Random weights for `config` saved as a genossm checkpoint, loaded as the commands load it
    (`load_inference_model`: the peer's vocabulary seen through genossm's ids)."""
    torch.manual_seed(seed)
    save_model(build_model(config), directory)
    model, _ = load_inference_model(directory, device)
    return model


class SyntheticGenome:
    """One contig of random bases in memory, with the calls the scorer makes of a FASTA
    (`contigs`, `resolve`, `fetch`, `fetch_tokens`), so no FASTA reader (pysam) is needed."""

    def __init__(self, length: int, seed: int, gc: float = 0.41, name: str = "chrS"):
        rng = np.random.default_rng(seed)
        weights = np.array([1 - gc, gc, gc, 1 - gc]) / 2  # A C G T
        self.tokens = rng.choice(NUM_BASES, size=length, p=weights).astype(np.uint8)  # (L,)
        self.sequence = np.frombuffer(BASES.encode(), np.uint8)[self.tokens].tobytes().decode()
        self.contigs = {name: length}

    def resolve(self, name: str) -> str:
        if name not in self.contigs:
            raise InputError(f"unknown contig {name!r}")
        return name

    def fetch(self, contig: str, start: int, end: int, pad: bool = False) -> str:
        before, after = max(0, -start), max(0, end - len(self.sequence))
        return "N" * before + self.sequence[max(start, 0):min(end, len(self.sequence))] + "N" * after

    def fetch_tokens(self, contig: str, start: int, end: int, pad: bool = False) -> np.ndarray:
        return encode(self.fetch(contig, start, end, pad))


def synthetic_snvs(genome: SyntheticGenome, count: int, spacing: float, first: int, seed: int):
    """`count` SNVs from `first` on, exponential gaps of mean `spacing` (at least 1 base), as the
    VCF reader's records (`VcfRecord` with the fields `score_row` reads)."""
    rng = np.random.default_rng(seed)
    positions = first + np.cumsum(np.maximum(1, np.rint(rng.exponential(spacing, count))).astype(np.int64))
    contig = next(iter(genome.contigs))
    records = []
    for number, position0 in enumerate(positions.tolist(), start=1):
        ref = BASES[genome.tokens[position0]]
        alt = BASES[(BASES.index(ref) + int(rng.integers(1, 4))) % 4]
        fields = SimpleNamespace(contig=contig, pos=position0 + 1, id=f"snv{number}", ref=ref)
        records.append(vcf.VcfRecord(fields, None, number, vcf.make_variants(contig, position0 + 1, ref, [alt], None)))
    return records


# ---------------------------------------------------------------------------------------- scoring paths
@torch.no_grad()
def baseline_scores(model, genome: SyntheticGenome, records, window: int, batch_size: int,
                    both_strands: bool, device) -> list[tuple[float, float]]:
    """The peer-style loop. For each batch of SNVs: the ref and alt windows of `window` bases (the
    same windows genossm scores), one forward over all of them, and per SNV (log P(alt window) -
    log P(ref window), the log-ratio at the SNV). Both strands: the same for the reverse
    complements, averaged."""
    from genossm.tokenizer import reverse_complement_tokens

    layout = TileLayout(window)
    scores = []
    for first in range(0, len(records), batch_size):
        refs, alts, offsets = [], [], []
        for record in records[first:first + batch_size]:
            position0 = record.record.pos - 1
            start = layout.tile_start(position0)
            ref = genome.fetch_tokens(record.record.contig, start, start + window)
            alt = ref.copy()
            alt[position0 - start] = BASES.index(record.variants[0].alt)
            refs.append(ref)
            alts.append(alt)
            offsets.append(position0 - start)
        strands = [(refs, alts, offsets)]
        if both_strands:
            strands.append(([reverse_complement_tokens(r) for r in refs], [reverse_complement_tokens(a) for a in alts],
                            [window - 1 - o for o in offsets]))
        per_strand = []
        for strand_refs, strand_alts, strand_offsets in strands:
            tokens = torch.from_numpy(np.stack(strand_refs + strand_alts).astype(np.int64)).to(device)  # (2B, W)
            logits = model(tokens)  # (2B, W, V), the four bases first
            log_probs = logits[:, :-1, :NUM_BASES].float().log_softmax(-1)  # (2B, W-1, 4): predicts 1..W-1
            targets = tokens[:, 1:]
            token_ll = log_probs.gather(-1, targets.clamp(max=NUM_BASES - 1)[..., None])[..., 0] * (targets < NUM_BASES)
            n = len(strand_refs)
            predictor = torch.tensor(strand_offsets * 2, device=device)[:, None] - 1  # (2B, 1): predicts the SNV
            # Terms before the SNV read the same prefix in both windows and cancel in the difference:
            # summing from the SNV on is log P(alt window) - log P(ref window) without their rounding noise.
            from_snv = torch.arange(window - 1, device=device)[None] >= predictor  # (2B, W-1)
            window_ll = (token_ll.double() * from_snv).sum(1).cpu().numpy()  # (2B,)
            at_snv = token_ll.gather(1, predictor)[:, 0].double().cpu().numpy()  # (2B,)
            per_strand.append([(window_ll[n + i] - window_ll[i], at_snv[n + i] - at_snv[i]) for i in range(n)])
        scores.extend(tuple(float(np.mean(values)) for values in zip(*column)) for column in zip(*per_strand))
    return scores


def product_scorer(model, genome, window: int, batch_size: int, both_strands: bool, device,
                   scores: tuple[str, ...] = DEFAULT_SCORES, suffix_reuse: bool = False) -> ChunkScorer:
    """What `genossm score --score SCORES` runs per chunk: its settings from a ScoreJob, its
    ChunkScorer. With `suffix_reuse` the chunk scorer's VariantScorer reuses the cached reference
    pass (the library option the command line leaves at its device default: on for CPU, off for
    CUDA)."""
    job = ScoreJob(input="synthetic.vcf", fasta="synthetic.fa", window=window, batch_size=batch_size,
                   both_strands=both_strands, scores=scores)
    settings = score_settings(job, model.config.max_length)
    scorer = ChunkScorer(model, genome, settings, device, source=job.input)
    if suffix_reuse:
        scorer.scorer = VariantScorer(model, both_strands=both_strands, batch_size=batch_size, device=device,
                                      reuse_prefix_state=True, scores=settings.scores)
    return scorer


def product_scores(scorer: ChunkScorer, records, name: str, deadline: float = math.inf) -> list[float]:
    """Score `name` of `records`, chunk by chunk as `run_score` hands them out, until `deadline`."""
    values = []
    for _, chunk in numbered_chunks(iter(records), scorer.settings.chunk_size):
        rows, _ = scorer.score(chunk)
        values.extend(row.value(name) for row in rows)
        if time.perf_counter() > deadline:
            break
    return values


def timed_path(run, device) -> tuple[int, float]:
    """(SNVs scored, seconds) of `run(deadline)`, which scores SNVs in order until the deadline."""
    synchronize(device)
    start = time.perf_counter()
    count = len(run(start))
    synchronize(device)
    return count, time.perf_counter() - start


def scoring_benchmark(args, golden: Path, device: torch.device, workdir: Path) -> dict:
    hf_config = shaped_config(golden, "hyenadna", args.shape, HYENADNA_LARGE_1M)
    config, _ = hyenadna_config(hf_config, "huggingface", golden / "hyenadna" / "config.json")
    model = saved_random_model(config, workdir / "hyenadna-scoring", device)
    window = args.context
    genome = SyntheticGenome(int(args.snvs * args.spacing * 1.1) + 2 * window + 1000, seed=args.seed)
    records = synthetic_snvs(genome, args.snvs, args.spacing, window, seed=args.seed + 1)
    strands = dict(both_strands=args.both_strands, device=device)
    product = product_scorer(model, genome, window, args.batch_size, **strands)
    reuse = product_scorer(model, genome, window, args.batch_size, suffix_reuse=True, **strands)
    site = product_scorer(model, genome, window, args.batch_size, scores=("site",), **strands)

    # Gate (and warm-up: kernels compiled, FFT plans made): every path against the baseline.
    gate = records[:args.gate_snvs]
    expected = baseline_scores(model, genome, gate, window, args.batch_size, **strands)
    expected_llr = np.array([llr for llr, _ in expected])
    expected_site = np.array([site for _, site in expected])
    scale = max(1.0, float(np.abs(expected_llr).max()))
    gate_errors = {
        "product": float(np.abs(np.array(product_scores(product, gate, "llr")) - expected_llr).max()),
        "suffix_reuse": float(np.abs(np.array(product_scores(reuse, gate, "llr")) - expected_llr).max()),
        "product_site": float(np.abs(np.array(product_scores(site, gate, "site")) - expected_site).max()),
    }
    print(json.dumps({"gate_max_abs_difference": gate_errors}), file=sys.stderr)
    failed = {name: error for name, error in gate_errors.items() if not error <= 1e-3 * scale}
    if failed:
        raise SystemExit(f"scoring gate: {failed} differ from the baseline by more than {1e-3 * scale:.3g}; not timing")

    budget = args.seconds_per_path
    paths = {
        "baseline": lambda start: baseline_until(model, genome, records, window, args.batch_size, start + budget,
                                                 **strands),
        "product": lambda start: product_scores(product, records, "llr", start + budget),
        "suffix_reuse": lambda start: product_scores(reuse, records, "llr", start + budget),
        "product_site": lambda start: product_scores(site, records, "site", start + budget),
    }
    timings = {}
    for name, run in paths.items():
        count, seconds = timed_path(run, device)
        timings[name] = {"snvs": count, "seconds": round(seconds, 3), "snvs_per_s": round(count / seconds, 2)}
        print(json.dumps({name: timings[name]}), file=sys.stderr)
    baseline_rate = timings["baseline"]["snvs_per_s"]
    for name, row in timings.items():
        row["speedup_vs_baseline"] = round(row["snvs_per_s"] / baseline_rate, 2)
    per_tile = TileLayout(window).stride / args.spacing  # mean SNVs sharing one reference window
    return {
        "model": f"HyenaDNA {args.shape} shape, random weights, converted format",
        "d_model": config.d_model, "n_layers": config.n_layers, "l_max": config.max_length,
        "parameters": sum(p.numel() for p in model.parameters()),
        "precision": "float32 (as genossm score runs)", "context": window, "snvs": len(records),
        "mean_spacing_bp": args.spacing, "snvs_per_tile": round(per_tile, 2),
        "both_strands": args.both_strands, "batch_size": args.batch_size,
        "chunk_size": product.settings.chunk_size, "seconds_per_path": budget,
        "gate_snvs": len(gate), "gate_max_abs_difference": gate_errors, "paths": timings,
        "target_speedup": 4.0,
        # genossm score's device default: suffix reuse on a CPU, full alt windows on a GPU.
        "product_uses_suffix_reuse": product.scorer.reuse_prefix_state,
        "ideal_speedup_by_tokens": ideal_speedups(per_tile, product.scorer.reuse_prefix_state),
    }


def ideal_speedups(per_tile: float, product_reuses: bool) -> dict:
    """Tokens the baseline runs per SNV (2 windows) over the tokens each path runs, for k SNVs per
    tile: product 1 + k windows per tile; suffix_reuse a reference pass per tile plus the alt
    window from the SNV on (half a window on average: SNVs lie in the middle half of their
    tile); product_site one reference pass per tile. The suffix sum's ceiling is 4x however many
    SNVs share a tile."""
    k = max(per_tile, 1e-9)
    full_windows, suffixes = round(2 * k / (1 + k), 2), round(4 * k / (2 + k), 2)
    return {"product": suffixes if product_reuses else full_windows, "suffix_reuse": suffixes,
            "product_site": round(2 * k, 2)}


def baseline_until(model, genome, records, window: int, batch_size: int, deadline: float, **strands) -> list:
    """`baseline_scores` batch by batch, in order, until `deadline`."""
    scores = []
    for first in range(0, len(records), batch_size):
        scores += baseline_scores(model, genome, records[first:first + batch_size], window, batch_size, **strands)
        if time.perf_counter() > deadline:
            break
    return scores


# ---------------------------------------------------------------------------------------- embed
def embed_benchmark(args, golden: Path, device: torch.device, workdir: Path) -> list[dict]:
    """`genossm embed` of one region on `device`. On a CPU the command embeds each region in a
    worker thread with one torch thread (`run_job(chunk_workers=True)`: the same numbers for any
    --threads), so one region runs on `--embed-threads` (default 1) torch threads here too."""
    from genossm.infer.runtime import torch_threads

    threads = args.embed_threads if device.type == "cpu" else torch.get_num_threads()
    with torch_threads(threads):
        return [embed_one(args, kind, golden, device, workdir) for kind in args.embed_models]


def embed_one(args, kind: str, golden: Path, device: torch.device, workdir: Path) -> dict:
    from genossm.infer.embed.embedder import EmbedSettings, embed_tokens_region

    genome = SyntheticGenome(args.region, seed=args.seed + 2)
    hf_config = {**shaped_config(golden, "caduceus_ps", args.embed_shape, CADUCEUS_131K), "rcps": kind == "ps"}
    config = caduceus_config(hf_config, golden / "caduceus_ps" / "config.json", 131072)
    model = saved_random_model(config, workdir / f"caduceus-{kind}", device)
    settings = EmbedSettings(both_strands=True, max_pass_length=args.max_pass_length)
    load_before = os.getloadavg()[0]
    synchronize(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    mean, _ = embed_tokens_region(model, genome.tokens, settings, device)
    synchronize(device)
    # On a shared CPU the process's CPU time is the steadier figure: other jobs stretch the wall
    # clock, not the work done (with one torch thread, CPU seconds ~ seconds on an idle core).
    row = {"model": f"Caduceus-{kind.upper()} {args.embed_shape} shape, random weights, converted format",
           "d_model": config.d_model, "n_layers": config.n_layers, "region_bp": args.region,
           "both_strands": True, "max_pass_length": args.max_pass_length,
           "torch_threads": torch.get_num_threads(), "seconds": round(time.perf_counter() - start, 2),
           "cpu_seconds": round(time.process_time() - cpu_start, 2),
           "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    if kind == "ps" and args.embed_forward_only:
        # RC-equivariant: the reverse strand's pass, flipped back, would be the forward pass but for
        # the [SEP] the peer's tokenizer appends (at the 3' end of each strand's pass).
        start = time.perf_counter()
        forward, _ = embed_tokens_region(model, genome.tokens, EmbedSettings(
            both_strands=False, max_pass_length=args.max_pass_length), device)
        row["forward_only_seconds"] = round(time.perf_counter() - start, 2)
        row["forward_only_max_abs_difference"] = float(np.abs(forward - mean).max())
    print(json.dumps(row), file=sys.stderr)
    return row


# ---------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--golden", type=Path, default=DEFAULT_GOLDEN,
                        help="the goldens (hyenadna/, caduceus_ph/, caduceus_ps/); default: tests/fixtures/published")
    parser.add_argument("--shape", choices=("large-1m", "golden"), default="large-1m",
                        help="scoring model: HyenaDNA large-1m's shape, or the golden's tiny one")
    parser.add_argument("--snvs", type=int, default=10_000)
    parser.add_argument("--spacing", type=float, default=2000.0, help="mean bases between SNVs")
    parser.add_argument("--context", type=int, default=32768, help="scoring window (bases)")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per forward, every path")
    parser.add_argument("--both-strands", action="store_true", help="score both strands in every path")
    parser.add_argument("--gate-snvs", type=int, default=32)
    parser.add_argument("--seconds-per-path", type=float, default=25.0,
                        help="each path scores SNVs in order for at most this long (after the one running batch)")
    parser.add_argument("--embed-models", nargs="+", choices=("ph", "ps"), default=["ph", "ps"])
    parser.add_argument("--embed-shape", choices=("131k", "golden"), default="131k")
    parser.add_argument("--embed-forward-only", action="store_true",
                        help="PS: also time the forward strand alone and report its difference")
    parser.add_argument("--region", type=int, default=131072, help="bases of the embedded region")
    parser.add_argument("--max-pass-length", type=int, default=65536, help="embed's chunk length")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (CPU) of the golden and scoring sections")
    parser.add_argument("--embed-threads", type=int, default=1,
                        help="torch threads of the embed section on a CPU (genossm embed: 1 per region)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    for name in ("snvs", "context", "batch_size", "gate_snvs", "region", "max_pass_length"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.spacing < 1 or args.seconds_per_path <= 0:
        parser.error("--spacing must be at least 1 and --seconds-per-path positive")
    if args.context < 8:
        parser.error("--context must be at least 8")
    if not (args.golden / "hyenadna" / "config.json").is_file():
        parser.error(f"--golden {args.golden}: expected the goldens' folders hyenadna/, caduceus_ph/, caduceus_ps/")
    args.gate_snvs = min(args.gate_snvs, args.snvs)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    report = {"benchmark": "published models: goldens under bf16, SNV scoring, region embedding",
              **device_facts(device), "command": " ".join(["python", "benchmarks/published_models.py", *sys.argv[1:]])}
    with tempfile.TemporaryDirectory(prefix="genossm-published-") as scratch:
        workdir = Path(scratch)
        started = time.perf_counter()
        if "golden" in args.sections:
            report["golden"] = golden_check(args.golden, device, workdir)
        if "scoring" in args.sections:
            report["scoring"] = scoring_benchmark(args, args.golden, device, workdir)
        if "embed" in args.sections:
            report["embed"] = embed_benchmark(args, args.golden, device, workdir)
        report["total_seconds"] = round(time.perf_counter() - started, 1)
    emit_report(report, args.out)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
