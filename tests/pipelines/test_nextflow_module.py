"""The Nextflow module (pipelines/nextflow/modules/local/genossm/score) without Nextflow.

Nextflow cannot be installed here (its launcher downloads the runtime from nextflow.io), so this
test renders the module's `script:` block as Nextflow would for its nf-test case (the bundled
phased sample, `samples:'all'`, the tiny model instead of the bundled one) and runs the command
lines in bash: the scored VCF, its index and versions.yml must come out as the `output:` block
declares, with the haplotype FORMAT fields.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pysam
import yaml

from genossm import __version__
from genossm.resources import RESOURCES
from infer_helpers import save_tiny_model

MODULE = Path(__file__).resolve().parents[2] / "pipelines" / "nextflow" / "modules" / "local" / "genossm" / "score"


def script_block(text: str, section: str) -> str:
    """The triple-quoted shell text of `script:` or `stub:`, dedented as Nextflow does."""
    body = text.split(f"    {section}:\n", 1)[1]
    return textwrap.dedent(body.split('"""', 2)[1])


def render(template: str, values: dict[str, str]) -> str:
    """Nextflow's GString interpolation of ${name} (and `\\$` for a literal $), for this module."""
    rendered = re.sub(r"(?<!\\)\$\{([^}]+)\}", lambda match: values[match.group(1)], template)
    return rendered.replace("\\$", "$")


def test_module_files_follow_the_nf_core_layout():
    for name in ("main.nf", "meta.yml", "environment.yml", "tests/main.nf.test", "tests/nextflow.config"):
        assert (MODULE / name).is_file(), name
    meta = yaml.safe_load((MODULE / "meta.yml").read_text())
    assert meta["name"] == "genossm_score"
    declared = [next(iter(entry[name][-1])) for entry, name in zip(meta["output"], ("vcf", "tbi", "versions"))]
    assert declared == ["*.vcf.gz", "*.vcf.gz.tbi", "versions.yml"]
    main = (MODULE / "main.nf").read_text()
    for emitted in ('path("*.vcf.gz")', 'path("*.vcf.gz.tbi")', 'path "versions.yml"'):
        assert emitted in main


def test_module_script_runs_on_the_bundled_phased_sample(tmp_path):
    model = save_tiny_model("hyena", tmp_path / "tiny")
    work = tmp_path / "work"
    work.mkdir()
    (work / "sample_phased.vcf").symlink_to(RESOURCES / "sample" / "sample_phased.vcf")
    (work / "sample_genome.fa.gz").symlink_to(RESOURCES / "sample" / "sample_genome.fa.gz")
    values = {"vcf": "sample_phased.vcf", "fasta": "sample_genome.fa.gz", "model_arg": f"--model {model}",
              "samples_arg": "--samples all", "task.cpus": "2", "args": "--chunk-size 64",
              "prefix": "sample_phased.genossm", "task.process": "GENOSSM_SCORE"}
    script = render(script_block((MODULE / "main.nf").read_text(), "script"), values)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env, check=True, capture_output=True)
    assert yaml.safe_load((work / "versions.yml").read_text()) == {"GENOSSM_SCORE": {"genossm": __version__}}
    assert (work / "sample_phased.genossm.vcf.gz.tbi").is_file()
    with pysam.VariantFile(str(work / "sample_phased.genossm.vcf.gz")) as scored:
        assert "GENOSSM_HLLR" in scored.header.formats and "GENOSSM_HVAR" in scored.header.formats
        records = list(scored)
    assert len(records) == 8 and records[0].samples["S4"]["GENOSSM_HVAR"] == (0.0, 0.0)


def test_module_stub_writes_what_the_outputs_declare(tmp_path):
    script = render(script_block((MODULE / "main.nf").read_text(), "stub"),
                    {"prefix": "x.genossm", "task.process": "GENOSSM_SCORE"})
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, check=True)
    assert (tmp_path / "x.genossm.vcf.gz").is_file() and (tmp_path / "x.genossm.vcf.gz.tbi").is_file()
    assert yaml.safe_load((tmp_path / "versions.yml").read_text()) == {"GENOSSM_SCORE": {"genossm": __version__}}
