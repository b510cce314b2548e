"""Files shipped inside the package: the bundled model and sample data (see README)."""

from __future__ import annotations

from pathlib import Path

RESOURCES = Path(__file__).resolve().parent
