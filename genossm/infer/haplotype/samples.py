"""Which samples `genossm score --samples/--samples-file` scores, checked against the VCF header."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genossm.errors import InputError, UsageError


@dataclass(frozen=True)
class SampleSelection:
    """`names` as given (None: `all`, every sample of the input), `source` for messages."""

    names: tuple[str, ...] | None
    source: str = "--samples"

    @classmethod
    def from_option(cls, text: str) -> "SampleSelection":
        """`--samples S1,S2` or `--samples all`."""
        if text.strip() == "all":
            return cls(None)
        names = tuple(name.strip() for name in text.split(","))
        if not all(names):
            raise UsageError(f"--samples {text!r}: expected comma-separated sample names or `all`")
        return cls(names)

    @classmethod
    def from_file(cls, path: str) -> "SampleSelection":
        """`-S FILE`: one sample name per line (blank lines and `#` comments skipped), as bcftools."""
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as err:
            raise InputError(f"cannot read the samples file: {err.strerror}", path=path) from None
        names = tuple(line.split("\t")[0].strip() for line in lines if line.strip() and not line.startswith("#"))
        if not names:
            raise InputError("the samples file names no sample (one name per line expected)", path=path)
        return cls(names, source=f"-S {path}")

    def resolve(self, header_samples: list[str], input_path: str) -> list[str]:
        """The selected names in the VCF's column order, or an error naming the missing ones."""
        if not header_samples:
            raise InputError(f"{self.source}: the input has no sample columns (no genotypes to score)",
                             path=input_path)
        if self.names is None:
            return list(header_samples)
        missing = [name for name in self.names if name not in header_samples]
        if missing:
            shown = ", ".join(header_samples[:10]) + (", ..." if len(header_samples) > 10 else "")
            raise InputError(f"{self.source}: sample(s) {', '.join(missing)} not in the input "
                             f"(it has {shown})", path=input_path)
        wanted = set(self.names)
        return [name for name in header_samples if name in wanted]
