"""The score definitions of `genossm score --score NAME[,NAME...]`: names, INFO fields, header texts.

One place says what each score is, so the VCF header, the TSV columns, `--help` and the README
cannot drift apart. The numbers themselves are computed in `genossm.infer.score.scorer`.

    llr          causal: the whole-window log-likelihood ratio, summed from the first changed base
                 to the window end (genossm <= 0.1's only score); masked: the masked marginal
    site         log P(ALT bases) - log P(REF bases) at the variant position(s) only, given the
                 reference context (causal: the bases before them; masked: the window with the
                 variant positions masked, i.e. the masked marginal). An SNV under a causal model
                 reads only the reference pass: one forward pass per tile for all its SNVs
    embdist      Euclidean distance between the window means of the final hidden states (alt vs ref)
    embcos       cosine distance (1 - cosine similarity) between the same two means
    embdist_mid  Euclidean distance between the window means of the residual stream after the
                 middle block (block n_layers // 2 of n_layers), before the final norm
    embcos_mid   cosine distance between the same two means

Every score is computed per strand and averaged over the strands scored (both by default, the
forward strand only with `--no-rc`); the header says which.
"""

from __future__ import annotations

from genossm.errors import UsageError

SCORE_NAMES = ("llr", "site", "embdist", "embcos", "embdist_mid", "embcos_mid")
# The default: on the VEP benchmark (docs/vep.md, held-out bacteria) the LLR and the Euclidean
# distance are the best pooled scores for every pair the bundled model separates, and they come
# from the same alt pass; `site` is 14x faster on dense VCFs but much weaker for stop-gained SNVs.
DEFAULT_SCORES = ("llr", "embdist")
EMBEDDING_SCORES = ("embdist", "embcos", "embdist_mid", "embcos_mid")
MIDDLE_LAYER_SCORES = ("embdist_mid", "embcos_mid")


class ScoreValues:
    """What ScoreRow and AlleleScore share: `values`, the scores by definition name, read as
    attributes for the two default scores (None when not computed)."""

    values: dict

    @property
    def llr(self) -> float | None:
        return self.values.get("llr")

    @property
    def embdist(self) -> float | None:
        return self.values.get("embdist")


def info_field(name: str) -> str:
    """The INFO key of a score: GENOSSM_LLR, GENOSSM_SITE, GENOSSM_EMBDIST_MID, ..."""
    return f"GENOSSM_{name.upper()}"


def parse_scores(text: str | None) -> tuple[str, ...]:
    """`--score` text (comma-separated names; None: the default) -> the names, in the given order."""
    if text is None:
        return DEFAULT_SCORES
    names = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in SCORE_NAMES]
    if unknown or not names:
        raise UsageError(f"--score takes comma-separated names from {', '.join(SCORE_NAMES)}; "
                         f"got {text!r}" + (f" ({', '.join(unknown)} unknown)" if unknown else ""))
    return names


def middle_layer(n_layers: int) -> int:
    """The block whose output the `_mid` embedding scores read (0-based index into the blocks)."""
    return max(n_layers // 2 - 1, 0)


def description(name: str, objective: str, both_strands: bool, n_layers: int | None = None) -> str:
    """The INFO header Description of a score: exactly what was computed in this run."""
    strands = "mean of the forward and reverse-complement strands" if both_strands else "forward strand only"
    if name == "llr":
        what = ("masked marginal log P(ALT bases) - log P(REF bases), each allele in its own window "
                "with its positions masked" if objective != "causal" else
                "log-likelihood ratio log P(alt window) - log P(ref window) under the causal model, "
                "summed over the window positions from the first changed base to the window end")
    elif name == "site":
        what = ("log P(ALT) - log P(REF) at the variant positions only, with those positions masked in "
                "the reference window (masked marginal)" if objective != "causal" else
                "log P(ALT bases) - log P(REF bases) at the variant positions only, each given the "
                "bases before it (the reference before the variant)")
    else:
        distance = "Euclidean distance" if name.startswith("embdist") else "cosine distance (1 - cosine similarity)"
        layer = ("the final hidden states" if not name.endswith("_mid") else
                 f"the residual stream after block {middle_layer(n_layers or 2) + 1} of {n_layers or '?'}")
        what = f"{distance} between the window means of {layer} for the alt and ref windows"
    return f"genossm {name}: {what}; {strands}"
