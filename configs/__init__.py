"""YAML model sizes (models/*.yaml) and training recipes (train/*.yaml), installed as genossm.configs."""

from __future__ import annotations

from pathlib import Path

CONFIGS = Path(__file__).resolve().parent
