"""Every Triton kernel specialization genossm launches compiles for sm_90 (on a CPU).

The other kernel tests run the kernels in the Triton interpreter, which accepts code that
Triton's code generator rejects (a helper returning a scalar in one constexpr branch and a
tensor in the other failed to compile under triton 3.6 only). This runs
scripts/check_kernel_compile.py: with the triton in GENOSSM_TRITON36_PATH (a
`pip install --target` directory; .ci/run installs triton 3.6.0 there, the version torch 2.11's
CUDA build brings), else with the installed one.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import check_kernel_compile
import genossm.kernels

SCRIPT = Path(check_kernel_compile.__file__)
TRITON_PATH = os.environ.get("GENOSSM_TRITON36_PATH") or None


def launched_kernels() -> set[str]:
    """Names of the @triton.jit functions that genossm's Python code refers to (to launch them:
    `kernel[grid](...)`, or picked first, `kernel = a if ... else b`), read from the source, so
    a new kernel that no curated launch reaches fails this test. Helpers are referred to only
    from inside other jitted functions."""
    roots = [Path(genossm.kernels.__file__).parent, Path(genossm.__file__).parent]
    trees = [ast.parse(path.read_text()) for root in roots for path in root.rglob("*.py")]

    def jitted(node) -> bool:
        return isinstance(node, ast.FunctionDef) and any(
            ast.unparse(d).split("(")[0] in ("triton.jit", "jit") for d in node.decorator_list)

    kernels = {node.name for tree in trees for node in ast.walk(tree) if jitted(node)}
    return {name.id for tree in trees for top in tree.body if not jitted(top)
            for name in ast.walk(top) if isinstance(name, ast.Name) and name.id in kernels}


def test_every_launched_specialization_compiles_for_sm90(tmp_path):
    if TRITON_PATH and not Path(TRITON_PATH, "triton").is_dir():
        pytest.fail(f"GENOSSM_TRITON36_PATH={TRITON_PATH} holds no triton package; install one "
                    "with pip install --no-deps --target DIR triton==3.6.0")
    missing = check_kernel_compile.ptxas_missing(TRITON_PATH)
    if missing:
        pytest.skip(f"cannot compile for sm_90 here: {missing}")
    expected = launched_kernels()
    assert len(expected) >= 20, f"found only {sorted(expected)} launched in the source"

    report_path = tmp_path / "report.json"
    command = [sys.executable, str(SCRIPT), "--json", str(report_path)]
    if TRITON_PATH:
        command += ["--triton-path", TRITON_PATH]
    done = subprocess.run(command, capture_output=True, text=True)
    # the per-kernel summary and each failure's compiler message end the log
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-8000:]}"

    report = json.loads(report_path.read_text())
    if TRITON_PATH:
        assert report["triton_version"].startswith("3.6"), report["triton_version"]
    compiled = [s for s in report["specializations"] if s["ok"]]
    assert len(compiled) == len(report["specializations"]) > 0
    not_checked = expected - {s["kernel"] for s in compiled}
    assert not not_checked, (
        f"kernels launched in the source but by no curated launch of {SCRIPT.name}: "
        f"{sorted(not_checked)}; add a case that reaches them to _op_cases")
