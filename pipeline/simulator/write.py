"""A world written to files: the five tables as CSV or Parquet, the truth as Parquet.

Large tables come from the world in chunks of rows; one writer thread encodes and writes a
chunk while the next is built, and each chunk is dropped once written, so memory peaks at the
simulator's compact event buffers plus a chunk or two. Files appear only when all succeed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.simulator.settings import SimConfig
from pipeline.simulator.tables import iter_frames
from pipeline.simulator.world import World

log = logging.getLogger(__name__)


_WRITE_CHUNK = 2_000_000  # rows per chunk when writing large tables


def write(config: SimConfig, out: Path, truth: Path, fmt: str = "csv") -> dict[str, int]:
    """Simulate and write the five tables to out/NAME.fmt and the truth to Parquet; row counts.

    Large tables are written in chunks of rows and dropped as they go, so memory peaks at the
    simulator's compact event buffers plus one chunk, not at the full pandas frames.
    """
    from pipeline.io import atomic_dir, atomic_file

    if fmt not in ("csv", "parquet"):
        raise ValueError(f"write: fmt must be csv or parquet, not {fmt!r}")
    t0 = time.perf_counter()
    world = World(config)
    world.setup()
    world.run()
    counts: dict[str, int] = {}
    # files are renamed into the temporary folder, and the folder into place, only on success
    with atomic_dir(Path(out)) as folder, contextlib.ExitStack() as files:
        sinks: dict[str, _Sink] = {}
        # one writer thread encodes and writes chunk k while this thread builds chunk k + 1
        writer = files.enter_context(ThreadPoolExecutor(max_workers=1))
        pending = None
        for name, frame in iter_frames(world, chunk_rows=_WRITE_CHUNK):
            if name not in sinks:
                kind = "parquet" if name == "truth" else fmt
                path = Path(truth) if name == "truth" else folder / f"{name}.{kind}"
                sinks[name] = _Sink(files.enter_context(atomic_file(path)), kind)
                files.callback(sinks[name].close)  # runs before that file's rename
            if pending is not None:
                pending.result()  # at most one chunk waits: bounds memory, raises errors
            pending = writer.submit(sinks[name].append, frame)
            counts[name] = counts.get(name, 0) + len(frame)
            del frame
        if pending is not None:
            pending.result()
    log.info("simulated and wrote %s in %.1fs", counts, time.perf_counter() - t0)
    return counts


class _Sink:
    """Append frames to one CSV or Parquet file."""

    def __init__(self, path: Path, fmt: str) -> None:
        """Remember the file; nothing is written until the first frame."""
        self.path, self.fmt = path, fmt
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None

    def append(self, frame: pd.DataFrame) -> None:
        """Append the rows of frame (the first frame also writes the header or schema)."""
        if self.fmt == "csv":
            first = self.rows == 0
            frame.to_csv(self.path, mode="w" if first else "a", header=first, index=False)
        else:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.path, table.schema)
            self._writer.write_table(table)
        self.rows += len(frame)

    def close(self) -> None:
        """Finish the file (idempotent)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
