"""Region embeddings (`genossm embed`), as a library.

    job.py       EmbedJob (the options) and embed_regions(job): check, load, run on every rank
    embedder.py  EmbedSettings; the embeddings of one sequence or region (both strands, chunks)
    store.py     the HDF5 file: layout, the partial file of a run (resume), merge

`from genossm.infer.embed import EmbedJob, embed_regions` is the whole command.
"""

from genossm.infer.embed.embedder import EmbedSettings
from genossm.infer.embed.job import EmbedJob, embed_regions
from genossm.infer.embed.store import merge_embedding_files

__all__ = ["EmbedJob", "EmbedSettings", "embed_regions", "merge_embedding_files"]
