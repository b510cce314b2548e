"""Shared fixtures. Triton kernels run in the interpreter on machines without a GPU (CI)."""

from __future__ import annotations

import os
import shutil

# Must happen before anything imports triton: the interpreter is chosen at import time.
if "TRITON_INTERPRET" not in os.environ and shutil.which("nvidia-smi") is None:
    os.environ["TRITON_INTERPRET"] = "1"

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
# Tests live in folders mirroring the package (tests/io, tests/kernels, ...); shared helpers
# (infer_helpers.py, tensor_checks.py) sit here, and the kernel code generator in scripts/.
sys.path[:0] = [str(TESTS), str(TESTS.parent / "scripts")]

DATA = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def data_dir() -> Path:
    return DATA
