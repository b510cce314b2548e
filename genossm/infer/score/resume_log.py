"""The resume log of `genossm score`: scores of finished chunks, kept beside the output file.

A crashed run leaves `OUT.genossm-resume.tsv`; a rerun with `--resume` reads the finished chunks
back bit-exact instead of scoring them again (`genossm.infer.score.outputs.ScoreWriter`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from genossm.errors import InputError
from genossm.infer.score.rows import ScoreRow


def resume_log_path(output: str | os.PathLike) -> Path:
    """Where the resume log of an output file lives: beside it, named after it."""
    output = Path(output)
    return output.with_name(output.name + ".genossm-resume.tsv")


class ResumeLog:
    """Scores of completed chunks, appended as they finish, so a crashed run can continue.

    Lines: `#genossm-score-resume`, `#fingerprint <hex>` (the settings and the model checksum: a log
    written with other settings is refused), then per ALT `record alt_index llr embdist status`
    (floats as `repr`, so they read back bit-exact) and `#done <chunk>` after each complete chunk.
    Lines after the last `#done` (a chunk cut short by the crash) are dropped on opening. The
    saved chunks are read back one at a time (`saved_chunk`), so memory stays bounded.
    """

    MAGIC = "#genossm-score-resume"

    def __init__(self, path: Path, fingerprint: str, resume: bool):
        self.path = path
        self.fingerprint = fingerprint
        self.completed_chunks = 0
        self._reader = None
        if resume and path.exists():
            self._check_and_trim()
        if self.completed_chunks == 0:
            path.write_text(f"{self.MAGIC}\n#fingerprint\t{fingerprint}\n", encoding="utf-8")
        else:
            self._reader = open(path, encoding="utf-8")
            self._reader.readline(), self._reader.readline()  # magic and fingerprint
        self._file = open(path, "a", encoding="utf-8")

    def _check_and_trim(self) -> None:
        """Validate the header, count complete chunks, cut the file after the last one."""
        with open(self.path, encoding="utf-8") as handle:
            if handle.readline().rstrip("\n") != self.MAGIC:
                raise InputError("not a genossm score resume log; delete it to start over", path=self.path)
            if handle.readline().rstrip("\n") != f"#fingerprint\t{self.fingerprint}":
                raise InputError("this resume log was written with other settings, model or input; delete "
                                 "it to start over, or rerun with the original options", path=self.path)
            keep = handle.tell()
            while line := handle.readline():
                if not line.endswith("\n"):
                    break  # a line cut short by the crash
                if line.startswith("#done\t"):
                    self.completed_chunks = int(line.split("\t")[1]) + 1
                    keep = handle.tell()
        with open(self.path, "r+b") as handle:
            handle.truncate(keep)

    def saved_chunk(self) -> dict[int, dict[int, tuple[float | None, float | None, str]]]:
        """The next saved chunk: {record index: {alt index: (llr, embdist, status)}}."""
        chunk: dict[int, dict[int, tuple]] = {}
        while line := self._reader.readline():
            if line.startswith("#done\t"):
                return chunk
            record, alt_index, llr, embdist, status = line.rstrip("\n").split("\t")
            chunk.setdefault(int(record), {})[int(alt_index)] = (_read_float(llr), _read_float(embdist), status)
        raise InputError("the resume log ended before its last complete chunk; delete it to start over",
                         path=self.path)

    def append_chunk(self, chunk_index: int, rows: list[ScoreRow], alt_indices: list[int]) -> None:
        text = "".join(f"{row.record}\t{alt_index}\t{row.llr!r}\t{row.embdist!r}\t{row.status}\n"
                       for row, alt_index in zip(rows, alt_indices))
        self._file.write(text + f"#done\t{chunk_index}\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self, remove: bool) -> None:
        self._file.close()
        if self._reader is not None:
            self._reader.close()
        if remove:
            self.path.unlink(missing_ok=True)


def _read_float(text: str) -> float | None:
    return None if text == "None" else float(text)


def fingerprint(*parts) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]
