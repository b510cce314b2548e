"""Calibrated scores: a model's distribution of GENOSSM_LLR over random variants, and percentiles from it.

`genossm calibrate` scores a background of random SNVs (and insertions and deletions of 1 to 20
bases) drawn across one or more genomes with the score `genossm score` writes by default (llr),
the same window and strands, and stores the distribution in the model directory
(`calibration.json`, named in config.json under "calibration"). `genossm score` then adds, per
ALT,

    GENOSSM_PCT = 100 * (share of background variants of the same class with llr <= this llr)

(an empirical lower-tail p-value times 100: 1 means only 1% of random variants of that class
lower the likelihood more). Classes: SNVs; deletions and insertions by length (1, 2, 3, 4-6,
7-10, 11-20 bases, longer ones with 11-20), so an indel is compared with random indels of its
own length: the length correction. MNVs and complex alleles get no percentile (`.`), and neither
does a run whose window or strands differ from the calibration's (a warning says so).

    background.py    random variants across genomes (clustered in tiles so passes are shared)
    distribution.py  Calibration: the stored quantiles, percentiles, the INFO field
    job.py           CalibrateJob and calibrate(job): sample, score, store, record in config.json
"""

from genossm.infer.calibration.distribution import Calibration, load_calibration
from genossm.infer.calibration.job import CalibrateJob, calibrate

__all__ = ["CalibrateJob", "Calibration", "calibrate", "load_calibration"]
