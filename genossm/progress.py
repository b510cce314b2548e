"""Progress bars on stderr (tqdm), silenced by `-q` and when stderr is not a terminal in CI logs."""

from __future__ import annotations

import os
import sys


def progress(iterable=None, *, total=None, desc: str = "", unit: str = "it", **kwargs):
    """A tqdm bar on stderr with rate and ETA; disabled with -q (GENOSSM_QUIET=1)."""
    from tqdm.auto import tqdm

    disable = os.environ.get("GENOSSM_QUIET") == "1"
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, disable=disable,
                dynamic_ncols=True, mininterval=0.5, **kwargs)
