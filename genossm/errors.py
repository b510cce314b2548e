"""The one domain exception of genossm.

Everything a user can get wrong (a missing file, a malformed record, a REF that does not match
the genome) raises `InputError`. The CLI turns it into a single line on stderr and exit code 1;
tracebacks are shown only with `--debug`. Library callers catch `GenossmError`.
"""

from __future__ import annotations

import os


class GenossmError(Exception):
    """Base class of every error genossm raises on purpose."""

    exit_code = 1


class InputError(GenossmError):
    """Bad input: names the file, the line (when known) and what was expected.

    >>> str(InputError("REF 'A' does not match the genome ('C')", path="x.vcf", line=12))
    "x.vcf:12: REF 'A' does not match the genome ('C')"
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None, line: int | None = None):
        self.message = message
        self.path = None if path is None else os.fspath(path)
        self.line = line
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path if self.line is None else f"{self.path}:{self.line}"
            where += ": "
        return f"{where}{self.message}"


class UsageError(GenossmError):
    """Arguments that cannot work together (exit code 2, like argparse's own errors)."""

    exit_code = 2
