"""genossm: Hyena and Mamba DNA language models at single-nucleotide resolution.

Heavy modules (torch, pysam) are imported lazily so that `genossm --help` stays instant.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load_model", "save_model", "GenossmError", "InputError"]

from genossm.errors import GenossmError, InputError


def __getattr__(name):
    # Lazy public API: `genossm.load_model` without importing torch at `import genossm`.
    if name in ("load_model", "save_model"):
        from genossm.models import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module 'genossm' has no attribute {name!r}")
