"""Shared fixtures. Triton kernels run in the interpreter on machines without a GPU (CI)."""

from __future__ import annotations

import os
import shutil

# Must happen before anything imports triton: the interpreter is chosen at import time.
if "TRITON_INTERPRET" not in os.environ and shutil.which("nvidia-smi") is None:
    os.environ["TRITON_INTERPRET"] = "1"

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def data_dir() -> Path:
    return DATA
