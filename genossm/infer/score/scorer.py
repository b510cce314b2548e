"""Zero-shot variant effect scores per ALT, from a DNA language model: the definitions of
`genossm.infer.score.definitions` (llr, site, embdist, embcos, embdist_mid, embcos_mid), any of
them at once.

Windows and their geometry are in `genossm.infer.score.tiles` (fixed tiles; ref and alt windows of
equal length W aligned at the left flank). Each score is computed per strand and averaged over
the forward strand and the reverse-complement strand (`both_strands=False`: forward only). On
the reverse strand both windows are reverse-complemented, so the left flank becomes the right
one.

LLR, causal models (next-base prediction):
    llr = sum_{t >= d} [log P(alt_t | alt_<t) - log P(ref_t | ref_<t)]
where d is the first window position at which the two (strand) windows differ. Positions before
d have identical prefixes, hence identical log-likelihoods, so this equals
log P(alt window) - log P(ref window): the whole-window likelihood ratio of two windows of the
same length W sharing their left flank. On the forward strand d is the variant's offset (or
later, when REF and ALT share leading bases such as the VCF padding base), so the sum runs over
the W - d positions from the variant to the window end: the same number of positions in both
windows, covering the REF allele and the reference after it in one, the ALT allele and the
(shifted) reference after it in the other. For an SNV the two sums differ only where the base
or its context differs. Swapping REF and ALT on a genome that carries ALT swaps the two windows
exactly (for SNVs, MNVs and indels alike), so llr is exactly antisymmetric.

LLR, masked models (masked-marginal):
    llr = sum_{i in ALT positions} log P(alt_i | alt window, ALT positions masked)
        - sum_{i in REF positions} log P(ref_i | ref window, REF positions masked)
For SNVs and MNVs the two masked windows are the same one, so this is the classic masked
marginal log P(alt) - log P(ref) at the masked variant positions from a single pass. For indels
it compares the likelihoods of the alleles each in its own context (alleles of different
lengths: ALT bases summed against REF bases); it is antisymmetric too.

SITE, causal models: the log-ratio at the variant position(s) only,
    site = sum_{t in ALT, t >= d} log P(alt_t | alt_<t) - sum_{t in REF, t >= d} log P(ref_t | ref_<t)
(`likelihood.causal_site_llr`; when d lies past an allele, the position d itself is compared).
For an SNV it is log P(ALT | reference before it) - log P(REF | the same): both numbers are in
the reference pass's logits at the variant, so every SNV of a tile is scored from that one pass,
with no alt window at all (`VariantScorer._snv_sites`). Masked models: the masked marginal, as llr.

EMBDIST / EMBCOS: Euclidean / cosine distance between the mean (over the W window positions) of
the model's final hidden states for the ref window and for the alt window; the `_mid` variants
read the output of the middle block (`definitions.middle_layer`) instead, which needs full alt
passes (the prefix-state and suffix-cache paths carry only the final hidden state).

Log-probabilities are over the four bases; non-base targets (N) count 0
(`genossm.infer.score.likelihood`).

`score_pairs_naive` is the reference: two (or four, masked) full passes per ALT and strand, one
at a time. `VariantScorer` is the fast path with the same numbers: unique windows are computed
once (every ALT whose REF window is the same tile shares its reference pass), passes are
batched, and for a causal model with recurrent inference (`forward_with_state`, Mamba) the
state of the reference prefix before d is reused, so only the alt window's suffix is recomputed.
Causal Hyena does the same from a cache of its reference pass (`prefix_cache` /
`forward_suffix`: the long convolutions are linear, so the alt suffix is the cached reference
convolution plus a convolution of the suffix's difference).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from genossm.errors import UsageError
from genossm.infer.score.definitions import (DEFAULT_SCORES, EMBEDDING_SCORES, MIDDLE_LAYER_SCORES, ScoreValues,
                                             middle_layer)
from genossm.infer.score.likelihood import (allele_log_likelihood, base_log_probs, causal_llr, causal_site_llr,
                                           causal_token_log_likelihood)
from genossm.infer.score.model_state import clone_state, concat_states
from genossm.infer.score.tiles import AllelePair, StrandPair
from genossm.tokenizer import N


CPU_MAX_BATCH_TOKENS = 2048


@dataclass(frozen=True)
class AlleleScore(ScoreValues):
    """The scores of one ALT, by definition name (`genossm.infer.score.definitions`)."""

    values: dict

    def __getitem__(self, name: str) -> float:
        return self.values[name]


@dataclass
class WindowOutputs:
    """What the scores of one strand pair are made of; a path fills only what its scores need.

    Causal: token log-likelihoods of both windows (`alt_ll` valid from the first difference on).
    Masked: the masked-marginal log-ratio. Embeddings: window means of the final hidden states and
    of the middle block's output, ref and alt."""

    ref_ll: np.ndarray | None = None  # (W,)
    alt_ll: np.ndarray | None = None  # (W,)
    masked_llr: float | None = None
    ref_mean: np.ndarray | None = None  # (D,)
    alt_mean: np.ndarray | None = None
    ref_mid: np.ndarray | None = None  # (D,)
    alt_mid: np.ndarray | None = None


def strand_values(pair: StrandPair, outputs: WindowOutputs, names: tuple[str, ...]) -> dict[str, float]:
    """The requested scores of one strand pair from its outputs (the one reduction of every path)."""
    values = {}
    for name in names:
        if name == "llr":
            values[name] = (outputs.masked_llr if outputs.masked_llr is not None
                            else causal_llr(outputs.ref_ll, outputs.alt_ll, pair.first_difference))
        elif name == "site":
            values[name] = (outputs.masked_llr if outputs.masked_llr is not None
                            else causal_site_llr(outputs.ref_ll, outputs.alt_ll, pair.first_difference,
                                                 pair.ref_span[1], pair.alt_span[1]))
        elif name in ("embdist", "embcos"):
            values[name] = _distance(name, outputs.ref_mean, outputs.alt_mean)
        else:
            values[name] = _distance(name, outputs.ref_mid, outputs.alt_mid)
    return values


def is_snv(pair: StrandPair) -> bool:
    return pair.ref_span[1] - pair.ref_span[0] == 1 and pair.alt_span[1] - pair.alt_span[0] == 1


def supports_prefix_state(model) -> bool:
    """True for causal models whose prefix state can be carried (unidirectional Mamba)."""
    return model.config.objective == "causal" and bool(getattr(model, "supports_recurrent_state", False))


def supports_suffix_cache(model) -> bool:
    """True for causal models that compute a window's suffix from a reference cache (Hyena)."""
    return model.config.objective == "causal" and bool(getattr(model, "supports_suffix_cache", False))


def strands(both_strands: bool) -> tuple[bool, ...]:
    return (False, True) if both_strands else (False,)


def check_scores(model, names: tuple[str, ...]) -> None:
    """The middle-layer scores need a model with blocks to read (every genossm model has them)."""
    if set(names) & set(MIDDLE_LAYER_SCORES) and not hasattr(model, "blocks"):
        raise UsageError(f"--score {','.join(MIDDLE_LAYER_SCORES)} read a middle block's output; "
                         f"this model ({type(model).__name__}) has no blocks")


@contextlib.contextmanager
def middle_layer_output(model, wanted: bool):
    """While active, `captured[0]` holds the last output `(B, L, D)` of the model's middle block."""
    captured: list[torch.Tensor] = []
    if not wanted:
        yield captured
        return
    block = model.blocks[middle_layer(len(model.blocks))]

    def keep(module, inputs, output) -> None:
        captured[:] = [output[0] if isinstance(output, tuple) else output]

    handle = block.register_forward_hook(keep)
    try:
        yield captured
    finally:
        handle.remove()


@torch.no_grad()
def _forward(model, tokens: np.ndarray, device, middle: list | None = None):
    """(B, L) uint8 -> logits (B, L, V), hidden (B, L, D), middle block output (B, L, D) or None."""
    batch = torch.from_numpy(np.ascontiguousarray(tokens).astype(np.int64)).to(device)
    logits, hidden = model(batch, return_embeddings=True)
    return logits, hidden, (middle[0] if middle else None)


def _distance(name: str, ref_mean: np.ndarray, alt_mean: np.ndarray) -> float:
    ref, alt = ref_mean.astype(np.float64), alt_mean.astype(np.float64)
    if name.startswith("embdist"):
        return float(np.linalg.norm(alt - ref))
    norms = np.linalg.norm(ref) * np.linalg.norm(alt)
    return float(1.0 - np.dot(ref, alt) / norms) if norms > 0 else 0.0


def _mean(hidden: torch.Tensor | None) -> np.ndarray | None:
    """(1, L, D) or (L, D) -> (D,) float32 mean over positions (None stays None)."""
    if hidden is None:
        return None
    return hidden.reshape(-1, hidden.shape[-1]).float().mean(0).cpu().numpy()


# --- reference implementation -------------------------------------------------------------------

def score_pairs_naive(model, pairs: list[AllelePair], *, both_strands: bool = True, device="cpu",
                      scores: tuple[str, ...] = DEFAULT_SCORES) -> list[AlleleScore]:
    """The obviously correct scorer: full separate passes for every window of every ALT."""
    check_scores(model, scores)
    objective = model.config.objective
    results = []
    with middle_layer_output(model, bool(set(scores) & set(MIDDLE_LAYER_SCORES))) as middle:
        for pair in pairs:
            per_strand = []
            for reverse in strands(both_strands):
                strand = pair.strand(reverse)
                ref_logits, ref_hidden, ref_mid = _forward(model, strand.ref[None], device, middle)
                ref_mid_mean = _mean(ref_mid)
                alt_logits, alt_hidden, alt_mid = _forward(model, strand.alt[None], device, middle)
                outputs = WindowOutputs(ref_mean=_mean(ref_hidden), alt_mean=_mean(alt_hidden),
                                        ref_mid=ref_mid_mean, alt_mid=_mean(alt_mid))
                if objective == "causal":
                    outputs.ref_ll = _token_ll(ref_logits, strand.ref, device)
                    outputs.alt_ll = _token_ll(alt_logits, strand.alt, device)
                else:
                    outputs.masked_llr = _masked_llr_naive(model, strand, device)
                per_strand.append(strand_values(strand, outputs, scores))
            results.append(_mean_over_strands(per_strand, scores))
    return results


def _mean_over_strands(per_strand: list[dict[str, float]], names: tuple[str, ...]) -> AlleleScore:
    return AlleleScore({name: float(np.mean([values[name] for values in per_strand])) for name in names})


def _token_ll(logits: torch.Tensor, window: np.ndarray, device) -> np.ndarray:
    tokens = torch.from_numpy(window.astype(np.int64))[None].to(device)
    return causal_token_log_likelihood(logits, tokens)[0].cpu().numpy()


def _masked_llr_naive(model, strand: StrandPair, device) -> float:
    total = 0.0
    for which, sign in (("alt", 1.0), ("ref", -1.0)):
        window = strand.alt if which == "alt" else strand.ref
        start, end = strand.alt_span if which == "alt" else strand.ref_span
        logits, _, _ = _forward(model, strand.masked(which)[None], device)
        log_probs = base_log_probs(logits[0, start:end]).cpu().numpy()  # (k, 4)
        total += sign * allele_log_likelihood(log_probs, window[start:end])
    return total


# --- fast path ------------------------------------------------------------------------------------

class VariantScorer:
    """Scores many ALTs at once with shared, batched, deduplicated passes (same numbers as naive).

    `scores`: the definitions to compute (`genossm.infer.score.definitions`). Each path computes
    only what they need: `site` alone on SNVs of a causal model reads the reference passes only
    (one per tile and strand for all its SNVs); the embedding scores need the alt windows' hidden
    states; the middle-layer ones need full alt passes (the prefix-state and suffix-cache paths
    carry only the final hidden state)."""

    def __init__(self, model, *, both_strands: bool = True, batch_size: int = 16, device="cpu",
                 reuse_prefix_state: bool | None = None, max_batch_tokens: int | None = None,
                 scores: tuple[str, ...] = DEFAULT_SCORES):
        check_scores(model, scores)
        self.model = model
        self.scores = tuple(scores)
        self.objective = model.config.objective
        self.both_strands = both_strands
        self.batch_size = max(1, int(batch_size))
        self.device = torch.device(device)
        # Prefix-state reuse saves compute but runs each tile's reference as one short call per
        # variant cut: a win on CPU (compute-bound, 5x over naive for tiny-mamba), a loss on a GPU,
        # where those small sequential calls are launch-bound and batched full windows are cheap
        # (H100: 0.67x naive with reuse). So by default it is used on CPU only. Causal Hyena's
        # suffix reuse (one reference pass with a cache, then alt suffixes) is not sequential, but
        # it trades whole-window passes for gathers and more, smaller kernel calls; it is only
        # measured on CPU, so it follows the same default.
        if reuse_prefix_state is None:
            reuse_prefix_state = self.device.type == "cpu"
        self.reuse_prefix_state = reuse_prefix_state and (supports_prefix_state(model)
                                                          or supports_suffix_cache(model))
        # The CPU reference scan materialises (B, H, N, chunk) tensors: past a few thousand tokens
        # per call it leaves the caches and gets slower per row, so CPU batches are capped.
        self.max_batch_tokens = (max_batch_tokens if max_batch_tokens is not None
                                 else CPU_MAX_BATCH_TOKENS if self.device.type == "cpu" else 1 << 62)
        self.wants_embeddings = bool(set(self.scores) & set(EMBEDDING_SCORES))
        self.wants_middle = bool(set(self.scores) & set(MIDDLE_LAYER_SCORES))

    def score(self, pairs: list[AllelePair], progress=None) -> list[AlleleScore]:
        """Scores of `pairs`, averaged over the strands; `progress(fraction)`, when given, hears the
        fraction of the work done after each model call (for a progress bar)."""
        per_strand = self.score_strands(pairs, progress)
        return [_mean_over_strands([values[i] for values in per_strand], self.scores) for i in range(len(pairs))]

    def score_strands(self, pairs: list[AllelePair], progress=None) -> list[list[dict[str, float]]]:
        """Per strand scored (forward, then reverse when both): per pair, {score name: value}."""
        if not pairs:
            return [[] for _ in strands(self.both_strands)]
        chosen = strands(self.both_strands)
        per_strand = []
        for number, reverse in enumerate(chosen):
            report = _ignore if progress is None else (
                lambda fraction, number=number: progress((number + fraction) / len(chosen)))
            strand_pairs = [p.strand(reverse) for p in pairs]
            per_strand.append(self._score_strand(strand_pairs, report))
        return per_strand

    def _reads_reference_only(self, pair: StrandPair) -> bool:
        """A causal SNV whose only score is `site`: the reference pass has its two log-probabilities."""
        return self.objective == "causal" and self.scores == ("site",) and is_snv(pair)

    def _score_strand(self, pairs: list[StrandPair], report) -> list[dict[str, float]]:
        reference_only = [i for i, pair in enumerate(pairs) if self._reads_reference_only(pair)]
        others = [i for i, pair in enumerate(pairs) if not self._reads_reference_only(pair)]
        values: list[dict[str, float] | None] = [None] * len(pairs)
        share = len(reference_only) / len(pairs)
        if reference_only:
            sites = self._snv_sites([pairs[i] for i in reference_only],
                                    lambda fraction: report(fraction * share))
            for i, site in zip(reference_only, sites):
                values[i] = {"site": site}
        if others:
            subset = [pairs[i] for i in others]
            outputs = self._outputs(subset, lambda fraction: report(share + fraction * (1 - share)))
            for i, pair, output in zip(others, subset, outputs):
                values[i] = strand_values(pair, output, self.scores)
        return values

    def _outputs(self, pairs: list[StrandPair], report) -> list[WindowOutputs]:
        if self.objective != "causal":
            return self._score_masked(pairs, report)
        if self.wants_middle or not self.reuse_prefix_state:
            return self._score_causal(pairs, report)
        if supports_suffix_cache(self.model):
            return self._score_causal_with_cache(pairs, report)
        return self._score_causal_with_state(pairs, report)

    # Causal SNVs, site only: one pass per unique reference window, no alt window at all.
    def _snv_sites(self, pairs: list[StrandPair], report) -> list[float]:
        unique = _unique_windows([p.ref for p in pairs])
        row_of = {key: row for row, key in enumerate(unique)}
        # Only the rows that predict a variant position are kept: (windows, W, 4) would be 16
        # bytes per base and window, this keeps 16 bytes per variant.
        wanted: dict[int, list[int]] = {}
        for pair in pairs:
            wanted.setdefault(row_of[pair.ref.tobytes()], []).append(pair.ref_span[0])
        log_probs: dict[tuple[int, int], np.ndarray] = {}
        windows = list(unique.values())
        # As many windows per call as the batch token cap allows (CPU: a 16 x 1,024 call is
        # slower per window than 2 x 1,024, the same cache effect as for the suffix batches).
        per_call = max(1, min(self.batch_size, self.max_batch_tokens // len(windows[0])))
        for first in range(0, len(windows), per_call):
            report(first / len(windows))
            logits = self._logits(np.stack(windows[first:first + per_call]))  # (B, W, V)
            for offset in range(logits.shape[0]):
                row = first + offset
                positions = sorted(set(wanted.get(row, ())))
                # logits at t - 1 predict t; a variant at window position 0 has no prediction (0).
                predictors = torch.tensor([max(t - 1, 0) for t in positions], device=logits.device)
                picked = base_log_probs(logits[offset, predictors]).cpu().numpy()  # (k, 4)
                for t, values in zip(positions, picked):
                    log_probs[row, t] = values if t > 0 else np.zeros(4, dtype=np.float32)
        sites = []
        for pair in pairs:
            t = pair.ref_span[0]
            values = log_probs[row_of[pair.ref.tobytes()], t]  # (4,): log P(base at t | reference before t)
            sites.append(float(np.float64(values[pair.alt[t]]) - np.float64(values[pair.ref[t]])))
        return sites

    @torch.no_grad()
    def _logits(self, tokens: np.ndarray) -> torch.Tensor:
        """(B, W) uint8 -> logits (B, W, V) on the device."""
        return self.model(torch.from_numpy(np.ascontiguousarray(tokens).astype(np.int64)).to(self.device))

    # Causal, full passes: one pass per unique window.
    def _score_causal(self, pairs: list[StrandPair], report) -> list[WindowOutputs]:
        unique = _unique_windows([w for p in pairs for w in (p.ref, p.alt)])
        summaries = self._window_summaries(list(unique.values()), causal=True, report=report)
        by_key = dict(zip(unique.keys(), summaries))
        results = []
        for pair in pairs:
            ref_ll, ref_mean, ref_mid = by_key[pair.ref.tobytes()]
            alt_ll, alt_mean, alt_mid = by_key[pair.alt.tobytes()]
            results.append(WindowOutputs(ref_ll=ref_ll, alt_ll=alt_ll, ref_mean=ref_mean, alt_mean=alt_mean,
                                         ref_mid=ref_mid, alt_mid=alt_mid))
        return results

    # Masked: one pass per unique masked window (SNV/MNV: the ref and alt masked windows coincide),
    # plus unmasked passes for the embeddings when an embedding score is asked for.
    def _score_masked(self, pairs: list[StrandPair], report) -> list[WindowOutputs]:
        masked_share = 0.5 if self.wants_embeddings else 1.0
        masked = _unique_windows([p.masked(which) for p in pairs for which in ("ref", "alt")])
        masked_log_probs = dict(zip(masked.keys(), self._masked_log_probs(
            list(masked.values()), report=lambda fraction: report(fraction * masked_share))))
        summaries = {}
        if self.wants_embeddings:
            plain = _unique_windows([w for p in pairs for w in (p.ref, p.alt)])
            summaries = dict(zip(plain.keys(), self._window_summaries(
                list(plain.values()), causal=False, report=lambda fraction: report(0.5 + fraction / 2))))
        results = []
        for pair in pairs:
            llr = 0.0
            for which, sign in (("alt", 1.0), ("ref", -1.0)):
                window = pair.alt if which == "alt" else pair.ref
                start, end = pair.alt_span if which == "alt" else pair.ref_span
                log_probs = masked_log_probs[pair.masked(which).tobytes()]
                llr += sign * allele_log_likelihood(log_probs[start:end], window[start:end])
            outputs = WindowOutputs(masked_llr=llr)
            if summaries:
                _, outputs.ref_mean, outputs.ref_mid = summaries[pair.ref.tobytes()]
                _, outputs.alt_mean, outputs.alt_mid = summaries[pair.alt.tobytes()]
            results.append(outputs)
        return results

    def _batches(self, items: list):
        for start in range(0, len(items), self.batch_size):
            yield items[start:start + self.batch_size]

    def _suffix_batches(self, jobs: list, window: int):
        """Batches of suffix jobs (sorted by cut), at most `max_batch_tokens` padded tokens each."""
        batch, longest = [], 0
        for job in jobs:
            length = max(longest, window - job[1])
            if batch and (len(batch) == self.batch_size or (len(batch) + 1) * length > self.max_batch_tokens):
                yield batch
                batch, length = [], window - job[1]
            batch.append(job)
            longest = length
        if batch:
            yield batch

    def _window_summaries(self, windows: list[np.ndarray], causal: bool, report=None):
        """Per window: (token log-likelihoods (W,) or None, mean hidden state (D,), mean middle
        block output (D,) or None)."""
        out = []
        with middle_layer_output(self.model, self.wants_middle) as middle:
            for batch in self._batches(windows):
                if out and report is not None:
                    report(len(out) / len(windows))
                tokens = np.stack(batch)  # (B, W)
                logits, hidden, mid = _forward(self.model, tokens, self.device, middle)
                means = hidden.float().mean(1).cpu().numpy()  # (B, D)
                mids = mid.float().mean(1).cpu().numpy() if mid is not None else [None] * len(batch)
                lls = (causal_token_log_likelihood(logits, torch.from_numpy(tokens.astype(np.int64)).to(self.device))
                       .cpu().numpy() if causal else [None] * len(batch))
                out.extend(zip(lls, means, mids))
        return out

    def _masked_log_probs(self, windows: list[np.ndarray], report=None) -> list[np.ndarray]:
        """Per masked window: (W, 4) base log-probabilities (only masked rows are read)."""
        out = []
        for batch in self._batches(windows):
            if out and report is not None:
                report(len(out) / len(windows))
            logits, _, _ = _forward(self.model, np.stack(batch), self.device)
            out.extend(base_log_probs(logits).cpu().numpy())
        return out

    # Causal with recurrent state: the reference window is run in segments cut where the ALTs
    # diverge from it, keeping the state at every cut; each alt window resumes from its cut.
    def _score_causal_with_state(self, pairs: list[StrandPair], report) -> list[WindowOutputs]:
        groups: OrderedDict[bytes, list[int]] = OrderedDict()
        for index, pair in enumerate(pairs):
            groups.setdefault(pair.ref.tobytes(), []).append(index)
        jobs = []  # (pair index, cut, state at cut, hidden sum of the ref prefix before the cut)
        references = {}
        for number, (key, indices) in enumerate(groups.items()):
            report(number / len(groups) / 2)  # the reference tiles are half the work, the alt suffixes the rest
            ref = pairs[indices[0]].ref
            cuts = sorted({_cut(pairs[i]) for i in indices})
            ref_ll, ref_mean, states, prefix_sums = self._segmented_reference(ref, cuts)
            references[key] = (ref_ll, ref_mean)
            for i in indices:
                cut = _cut(pairs[i])
                jobs.append((i, cut, states[cut], prefix_sums[cut]))
        results: list[WindowOutputs | None] = [None] * len(pairs)
        jobs.sort(key=lambda job: job[1])  # similar suffix lengths batch together (less padding)
        done = 0
        for batch in self._suffix_batches(jobs, len(pairs[0].ref)):
            report(0.5 + done / len(jobs) / 2)
            done += len(batch)
            suffixes = [(pairs[i].alt[cut:], state) for i, cut, state, _ in batch]
            suffix_lls, suffix_sums = self._run_suffixes(suffixes)
            for (i, cut, _, prefix_sum), suffix_ll, suffix_hidden_sum in zip(batch, suffix_lls, suffix_sums):
                pair = pairs[i]
                window = len(pair.ref)
                ref_ll, ref_mean = references[pair.ref.tobytes()]
                alt_ll = np.concatenate([np.zeros(cut, dtype=np.float32), suffix_ll])
                alt_mean = ((prefix_sum.astype(np.float64) + suffix_hidden_sum) / window).astype(np.float32)
                results[i] = WindowOutputs(ref_ll=ref_ll, alt_ll=alt_ll, ref_mean=ref_mean, alt_mean=alt_mean)
        return results

    @torch.no_grad()
    def _segmented_reference(self, ref: np.ndarray, cuts: list[int]):
        """One pass over `ref` in segments ending at each cut; states and hidden sums at the cuts."""
        bounds = [c for c in cuts if 0 < c < len(ref)]
        edges = [0, *bounds, len(ref)]
        state = None
        states, prefix_sums = {0: None}, {0: None}
        logits_parts, hidden_parts = [], []
        hidden_total = None
        for start, end in zip(edges[:-1], edges[1:]):
            tokens = torch.from_numpy(ref[start:end].astype(np.int64))[None].to(self.device)  # (1, l)
            logits, hidden, state = self.model.forward_with_state(tokens, state)
            logits_parts.append(logits)
            hidden_parts.append(hidden)
            segment_sum = hidden[0].double().sum(0).cpu().numpy()  # (D,)
            hidden_total = segment_sum if hidden_total is None else hidden_total + segment_sum
            states[end] = clone_state(state)  # later calls may update a state in place
            prefix_sums[end] = hidden_total.copy()
        d_model = hidden_parts[0].shape[-1]
        prefix_sums[0] = np.zeros(d_model)
        logits = torch.cat(logits_parts, dim=1)  # (1, W, V)
        hidden = torch.cat(hidden_parts, dim=1)  # (1, W, D)
        tokens = torch.from_numpy(ref.astype(np.int64))[None].to(self.device)
        ref_ll = causal_token_log_likelihood(logits, tokens)[0].cpu().numpy()
        ref_mean = hidden[0].float().mean(0).cpu().numpy()
        return ref_ll, ref_mean, states, prefix_sums

    @torch.no_grad()
    def _run_suffixes(self, items: list[tuple[np.ndarray, object]]):
        """Run alt suffixes from their prefix states, batched; right padding cannot leak (causal).

        Returns per item: token log-likelihoods of the suffix (entry 0 = 0: predicted by the
        prefix, never summed) and the float64 sum of its hidden states.
        """
        batch, lengths = self._padded_suffixes([suffix for suffix, _ in items])
        state = concat_states([self._initial_state(s) for _, s in items])
        logits, hidden, _ = self.model.forward_with_state(batch, state)
        return _suffix_outputs(logits, hidden, batch, lengths)

    def _padded_suffixes(self, suffixes: list[np.ndarray]) -> tuple[torch.Tensor, list[int]]:
        """Suffixes right-padded with N to the longest, `(B, l)` on the device, and their lengths."""
        lengths = [len(suffix) for suffix in suffixes]
        tokens = np.full((len(suffixes), max(lengths)), N, dtype=np.int64)  # (B, l)
        for row, suffix in enumerate(suffixes):
            tokens[row, :len(suffix)] = suffix
        return torch.from_numpy(tokens).to(self.device), lengths

    # Causal with a suffix cache (Hyena): one cached pass over a batch of reference windows, then
    # every alt window of those references from its cut on, batched across them.
    def _score_causal_with_cache(self, pairs: list[StrandPair], report) -> list[WindowOutputs]:
        groups: OrderedDict[bytes, list[int]] = OrderedDict()
        for index, pair in enumerate(pairs):
            groups.setdefault(pair.ref.tobytes(), []).append(index)
        results: list[WindowOutputs | None] = [None] * len(pairs)
        window = len(pairs[0].ref)
        # The cache holds ~(order + 1 + 2 (order - 1)) d_inner values per position and layer: as
        # many reference windows per pass as the batch token cap allows (at least one).
        per_pass = max(1, min(self.batch_size, self.max_batch_tokens // window))
        reference_groups = list(groups.values())
        for first in range(0, len(reference_groups), per_pass):
            report(first / len(reference_groups))
            references = reference_groups[first:first + per_pass]
            ref_lls, ref_means, ref_hidden, cache = self._cached_references(
                [pairs[indices[0]].ref for indices in references])
            # (pair index, cut, cached row), shorter suffixes together (less padding)
            jobs = sorted(((i, _cut(pairs[i]), row) for row, indices in enumerate(references) for i in indices),
                          key=lambda job: job[1])
            for batch in self._suffix_batches(jobs, window):
                suffix_lls, suffix_sums = self._run_cached_suffixes(
                    cache, [(pairs[i].alt[cut:], cut, row) for i, cut, row in batch])
                for (i, cut, row), suffix_ll, suffix_hidden_sum in zip(batch, suffix_lls, suffix_sums):
                    alt_ll = np.concatenate([np.zeros(cut, dtype=np.float32), suffix_ll])
                    prefix_sum = ref_hidden[row, :cut].double().sum(0).cpu().numpy()  # (D,)
                    alt_mean = ((prefix_sum + suffix_hidden_sum) / window).astype(np.float32)
                    results[i] = WindowOutputs(ref_ll=ref_lls[row], alt_ll=alt_ll, ref_mean=ref_means[row],
                                               alt_mean=alt_mean)
        return results

    @torch.no_grad()
    def _cached_references(self, references: list[np.ndarray]):
        """Reference windows -> token log-likelihoods (B, W), mean hidden states (B, D), hidden
        states (B, W, D) (their prefixes are the alt windows' prefixes), and the suffix cache."""
        tokens = torch.from_numpy(np.stack(references).astype(np.int64)).to(self.device)  # (B, W)
        logits, hidden, cache = self.model.prefix_cache(tokens)
        ref_lls = causal_token_log_likelihood(logits, tokens).cpu().numpy()
        ref_means = hidden.float().mean(1).cpu().numpy()  # (B, D)
        return ref_lls, ref_means, hidden, cache

    @torch.no_grad()
    def _run_cached_suffixes(self, cache, items: list[tuple[np.ndarray, int, int]]):
        """Alt suffixes (tokens, cut, cached row) from the cache, batched and right-padded (causal).

        Returns per item, as `_run_suffixes`: suffix token log-likelihoods (entry 0 = 0) and the
        float64 sum of its hidden states.
        """
        batch, lengths = self._padded_suffixes([suffix for suffix, _, _ in items])
        logits, hidden = self.model.forward_suffix(cache, batch, [cut for _, cut, _ in items],
                                                   [row for _, _, row in items])
        return _suffix_outputs(logits, hidden, batch, lengths)

    def _initial_state(self, state):
        """A fresh (zero) state for suffixes that start at window position 0."""
        if state is not None:
            return state
        return self.model.allocate_inference_state(1)


def _suffix_outputs(logits: torch.Tensor, hidden: torch.Tensor, tokens: torch.Tensor, lengths: list[int]):
    """Per padded suffix row: its token log-likelihoods (entry 0 = 0: predicted by the prefix,
    never summed) and the float64 sum of its hidden states, padding left out."""
    lls = causal_token_log_likelihood(logits, tokens).cpu().numpy()  # (B, l)
    # summed where the states are (a GPU): only (B, D) sums cross to the host, not (B, l, D)
    kept = torch.arange(hidden.shape[1], device=hidden.device)[None, :] < torch.tensor(
        lengths, device=hidden.device)[:, None]  # (B, l)
    sums = (hidden.double() * kept[..., None]).sum(1).cpu().numpy()  # (B, D)
    return [lls[row, :n] for row, n in enumerate(lengths)], list(sums)


def _ignore(fraction: float) -> None:
    """The progress report of a caller that asked for none."""


def _cut(pair: StrandPair) -> int:
    """Where the alt pass starts: one before the first difference, whose logits predict it."""
    return max(pair.first_difference - 1, 0)


def _unique_windows(windows: list[np.ndarray]) -> "OrderedDict[bytes, np.ndarray]":
    unique: OrderedDict[bytes, np.ndarray] = OrderedDict()
    for window in windows:
        unique.setdefault(window.tobytes(), window)
    return unique

