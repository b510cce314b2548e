"""A stored score distribution per variant class, and the GENOSSM_PCT it gives.

The file keeps, per class, points of the background's empirical CDF (value, P(background <=
value)): at 1,001 evenly spaced ranks and at each of the 100 lowest and 100 highest ranks, so it
stays a few tens of kB however large the background, with the extreme percentiles (where
p-values are read) as precise as the background allows. `percentile(x)` interpolates linearly
between these points: 100 * P(background <= x), 0 below the lowest value, 100 from the highest.
"""

from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genossm.atomic import atomic_path
from genossm.errors import InputError
from genossm.io import vcf

CALIBRATION_FILE = "calibration.json"
FORMAT_VERSION = 1
GRID = 1001
TAIL = 100
# Indel length classes: (name suffix, shortest, longest); longer indels use the last class.
LENGTH_CLASSES = ((("1", 1, 1), ("2", 2, 2), ("3", 3, 3), ("4-6", 4, 6), ("7-10", 7, 10), ("11-20", 11, 20)))
MAX_INDEL_LENGTH = 20
PCT_FIELD = "GENOSSM_PCT"


def variant_class(ref: str, alt: str) -> str | None:
    """`snv`, `del:<lengths>`, `ins:<lengths>`, or None (MNV, complex, symbolic: no percentile)."""
    if vcf.is_symbolic(alt) or alt in ("*", ".") or not alt:
        return None
    _, norm_ref, norm_alt = vcf.normalise(1, ref.upper(), alt.upper())
    kind = vcf.classify(norm_ref, norm_alt)
    if kind == vcf.SNV:
        return "snv"
    if kind not in (vcf.INS, vcf.DEL):
        return None
    length = max(len(norm_ref), len(norm_alt))
    name = next((name for name, low, high in LENGTH_CLASSES if low <= length <= high), LENGTH_CLASSES[-1][0])
    return f"{'del' if kind == vcf.DEL else 'ins'}:{name}"


def summarise(values: np.ndarray) -> dict:
    """The stored form of one class's background: points (value, P(background <= value)) of its
    empirical CDF at the ranks of an even grid and at every rank of both tails."""
    values = np.sort(np.asarray(values, dtype=np.float64))
    count = len(values)
    ranks = set(np.round(np.linspace(0, count - 1, GRID)).astype(int).tolist())
    ranks |= set(range(min(TAIL, count))) | set(range(max(count - TAIL, 0), count))
    ranks = sorted(ranks)
    return {"count": count, "probability": [round((rank + 1) / count, 8) for rank in ranks],
            "value": [float(f"{values[rank]:.7g}") for rank in ranks]}


@dataclass(frozen=True)
class Calibration:
    """A model's background distribution: what was scored, how, and the CDF points per class."""

    score: str
    window: int
    both_strands: bool
    classes: dict  # class name -> {"count", "probability", "value"}
    source: dict  # genomes, counts, seed: how it was made

    info_fields = [(PCT_FIELD, "A", "Float",
                    "genossm percentile of GENOSSM_LLR among random background variants of the same class "
                    "(SNVs; deletions and insertions by length) scored by the same model, window and strands: "
                    "100 * empirical P(background llr <= llr), so low values lower the likelihood more than "
                    "most random variants (an empirical lower-tail p-value x 100); . for MNVs and complex alleles")]

    def percentile(self, value: float | None, klass: str | None) -> float | None:
        if value is None or klass is None or klass not in self.classes or math.isnan(value):
            return None
        points = self.classes[klass]
        return float(100.0 * np.interp(value, points["value"], points["probability"], left=0.0, right=1.0))

    def info(self, rows) -> dict:
        """{GENOSSM_PCT: one percentile per ALT} from a record's ScoreRows."""
        return {PCT_FIELD: [self.percentile(row.llr, variant_class(row.ref, row.alt)) for row in rows]}

    def matches(self, window: int, both_strands: bool) -> bool:
        return self.window == window and self.both_strands == both_strands

    def to_json(self) -> dict:
        return {"format": FORMAT_VERSION, "score": self.score, "window": self.window,
                "both_strands": self.both_strands, "source": self.source, "classes": self.classes}


def load_calibration(model_dir: str | Path, config_record: dict) -> Calibration | None:
    """The calibration config.json names (its "calibration" -> "file"), or None if it names none."""
    entry = config_record.get("calibration")
    if not entry:
        return None
    path = Path(model_dir) / entry.get("file", CALIBRATION_FILE)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"config.json names a calibration file that cannot be read ({err}); rerun "
                         "`genossm calibrate` or remove the \"calibration\" entry", path=path) from None
    if data.get("format") != FORMAT_VERSION:
        raise InputError(f"calibration format {data.get('format')!r}, this genossm reads {FORMAT_VERSION}; "
                         "rerun `genossm calibrate`", path=path)
    return Calibration(data["score"], int(data["window"]), bool(data["both_strands"]), data["classes"],
                       data.get("source", {}))


def write_calibration(model_dir: str | Path, calibration: Calibration) -> Path:
    """calibration.json in `model_dir`, and its entry in config.json (both written atomically)."""
    model_dir = Path(model_dir)
    path = model_dir / CALIBRATION_FILE
    config_path = model_dir / "config.json"
    # The temporary files are private (0600); the results keep the model directory's permissions.
    mode = stat.S_IMODE(config_path.stat().st_mode)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(calibration.to_json(), indent=1) + "\n", encoding="utf-8")
        os.chmod(tmp, mode)
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["calibration"] = {"file": CALIBRATION_FILE, "score": calibration.score, "window": calibration.window,
                             "both_strands": calibration.both_strands,
                             "snvs": calibration.classes.get("snv", {}).get("count", 0)}
    with atomic_path(config_path) as tmp:
        Path(tmp).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        os.chmod(tmp, mode)
    return path
