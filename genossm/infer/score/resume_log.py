"""The resume log of `genossm score`: scores of finished chunks, kept beside the output file.

A crashed run leaves `OUT.genossm-resume.tsv`; a rerun with `--resume` reads the finished chunks
back bit-exact instead of scoring them again (`genossm.infer.score.outputs.ScoreWriter`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from genossm.atomic import create_exclusive, open_no_follow
from genossm.errors import InputError
from genossm.infer.score.rows import ScoreRow

START_OVER = "delete it or drop --resume to start over"


def resume_log_path(output: str | os.PathLike) -> Path:
    """Where the resume log of an output file lives: beside it, named after it."""
    output = Path(output)
    return output.with_name(output.name + ".genossm-resume.tsv")


class ResumeLog:
    """Scores of completed chunks, appended as they finish, so a crashed run can continue.

    Lines: `#genossm-score-resume`, `#fingerprint <hex>` (the settings, the model checksum, the
    input's header and the FASTA's identity: a log written for another run is refused), then per
    ALT `record alt_index status name=value...` (one pair per score of the run, floats as `repr`,
    so they read back bit-exact; none for an ALT that was not scored) and
    `#done <chunk> <digest>` after each complete chunk, where the digest (`chunk_digest`) covers
    the chunk's input records as htslib formats them: a resumed run checks each saved chunk
    against the records it reads now, so an input changed under the same name (or on stdin) is
    refused instead of receiving another file's scores. Lines after the last `#done` (a chunk cut
    short by the crash) are dropped on opening. The saved chunks are read back one at a time
    (`saved_chunk`), so memory stays bounded. The log is never written through a symlink.
    """

    MAGIC = "#genossm-score-resume"

    def __init__(self, path: Path, fingerprint: str, resume: bool):
        self.path = path
        self.fingerprint = fingerprint
        self.completed_chunks = 0
        self._reader = None
        if resume and os.path.lexists(path):
            self._check_and_trim()
        if self.completed_chunks == 0:
            with create_exclusive(path, encoding="utf-8") as handle:
                handle.write(f"{self.MAGIC}\n#fingerprint\t{fingerprint}\n")
        else:
            self._reader = self._open(path, "r", encoding="utf-8")
            self._reader.readline(), self._reader.readline()  # magic and fingerprint
        self._file = self._open(path, "a", encoding="utf-8")

    def _open(self, path, mode, **kwargs):
        try:
            return open_no_follow(path, mode, **kwargs)
        except OSError as err:
            raise InputError(f"cannot open the resume log ({err.strerror}; a symlink is never followed); "
                             f"{START_OVER}", path=path) from None

    def _check_and_trim(self) -> None:
        """Validate the header, count complete chunks, cut the file after the last one."""
        with self._open(self.path, "r", encoding="utf-8", errors="replace") as handle:
            if handle.readline().rstrip("\n") != self.MAGIC:
                raise InputError(f"not a genossm score resume log; {START_OVER}", path=self.path)
            if handle.readline().rstrip("\n") != f"#fingerprint\t{self.fingerprint}":
                raise InputError("this resume log was written with other settings, model, input header or "
                                 f"FASTA; {START_OVER}, or rerun with the original options", path=self.path)
            keep = handle.tell()
            while line := handle.readline():
                if not line.endswith("\n"):
                    break  # a line cut short by the crash
                if line.startswith("#done\t"):
                    self.completed_chunks = int(line.split("\t")[1]) + 1
                    keep = handle.tell()
        with self._open(self.path, "r+b") as handle:
            handle.truncate(keep)

    def saved_chunk(self) -> tuple[dict[int, dict[int, tuple[dict[str, float], str]]], str]:
        """The next saved chunk: ({record index: {alt index: ({score name: value}, status)}}, its
        input digest)."""
        chunk: dict[int, dict[int, tuple]] = {}
        while line := self._reader.readline():
            if line.startswith("#done\t"):
                fields = line.rstrip("\n").split("\t")
                return chunk, fields[2] if len(fields) > 2 else ""
            record, alt_index, status, *pairs = line.rstrip("\n").split("\t")
            values = {name: float(value) for name, value in (pair.split("=", 1) for pair in pairs)}
            chunk.setdefault(int(record), {})[int(alt_index)] = (values, status)
        raise InputError(f"the resume log ended before its last complete chunk; {START_OVER}", path=self.path)

    def append_chunk(self, chunk_index: int, rows: list[ScoreRow], alt_indices: list[int],
                     digest: str) -> None:
        text = "".join("\t".join([str(row.record), str(alt_index), row.status,
                                   *(f"{name}={value!r}" for name, value in row.values.items() if value is not None)]) + "\n"
                       for row, alt_index in zip(rows, alt_indices))
        self._file.write(text + f"#done\t{chunk_index}\t{digest}\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self, remove: bool) -> None:
        self._file.close()
        if self._reader is not None:
            self._reader.close()
        if remove:
            self.path.unlink(missing_ok=True)


def chunk_digest(chunk) -> str:
    """A digest of a chunk's input records ([(record index, VcfRecord)]) as htslib formats them."""
    digest = hashlib.sha256()
    for index, record in chunk:
        digest.update(f"{index}\t{record.record}".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:32]


def fingerprint(*parts) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]
