"""The layering rule (docs/layout.md): every import of a genossm module points down or sideways.

    kernels -> models -> train | infer -> cli, over the shared base (errors, atomic, tokenizer,
    progress, resources, configs) and io -> data. train and infer never import each other.

Read from the source with `ast` (deferred imports inside functions count too), so a violation
fails here before anyone trips over an import cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Installed name -> folder in the repo (pyproject's package-dir mapping).
PACKAGES = {"genossm": REPO / "genossm", "genossm.kernels": REPO / "kernels", "genossm.cli": REPO / "cli",
            "genossm.configs": REPO / "configs"}
BASE = {"genossm", "errors", "atomic", "tokenizer", "progress", "resources", "configs"}
ALLOWED = {
    "kernels": {"kernels"},
    "io": BASE | {"io"},
    "data": BASE | {"io", "data"},
    "models": BASE | {"kernels", "models"},
    "train": BASE | {"io", "data", "kernels", "models", "train"},
    "infer": BASE | {"io", "kernels", "models", "infer"},
    "describe": BASE | {"io", "models"},
    "finetune": BASE | {"io", "data", "kernels", "models", "train", "infer", "finetune"},
}


def layer(module: str) -> str:
    """genossm.infer.score.job -> infer; genossm.errors -> errors; genossm -> genossm."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def modules():
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            name = ".".join([package, *path.relative_to(folder).with_suffix("").parts]).removesuffix(".__init__")
            yield name, path


def genossm_imports(path: Path) -> set[str]:
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module)
    return {name for name in imported if name == "genossm" or name.startswith("genossm.")}


@pytest.mark.parametrize("module, path", [pytest.param(m, p, id=m) for m, p in modules() if layer(m) in ALLOWED])
def test_imports_point_down(module, path):
    upward = sorted(name for name in genossm_imports(path) if layer(name) not in ALLOWED[layer(module)])
    assert not upward, f"{path.relative_to(REPO)} ({layer(module)}) imports {upward}"
