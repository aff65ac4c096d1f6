"""Streaming replay: files are fed a piece at a time, so a file larger than the memory a replay may use still
replays, into the same books as the whole file fed at once; a message cut between pieces is carried over."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from feed_handler import replay as replay_mod
from feed_handler.generator import GenParams, write_binaryfile
from feed_handler.replay import book_counts, new_books, replay

from .conftest import REPO, latlab_cmd

PARAMS = GenParams(seed=5, messages=30_000, instruments=16, live_orders=2_000)
SYSTEM_EVENT = b"\x00\x0c" + b"S" + bytes(2) + bytes(2) + bytes(6) + b"Q"  # framed: books keep no state for it
LIMIT_MB = 400


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("stream") / "s.bin"
    write_binaryfile(PARAMS, path)
    return path


@pytest.mark.parametrize("engine", ["c", "python"])
def test_pieces_cut_anywhere_give_the_books_of_one_feed(session, engine, monkeypatch):
    """Pieces of random sizes (cuts inside length prefixes and messages alike), then a message cut at the very
    end: the same books, counts and errors as feeding the whole at once, and the cut tail counted once."""
    data = session.read_bytes()[:-5]  # the last message cut short
    whole = new_books(engine)
    whole.feed(data)
    rng = np.random.default_rng(1)
    cuts = np.sort(rng.choice(np.arange(1, len(data)), size=300, replace=False))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    streamed = new_books(engine)
    result = replay_mod.ReplayResult(path="-", format="binaryfile", engine=engine)
    replay_mod._feed_pieces(streamed, iter(pieces), result)
    assert streamed.snapshot() == whole.snapshot()
    assert book_counts(streamed) == book_counts(whole)
    assert book_counts(streamed)[1] == {"truncated": 1}
    assert streamed.feed_partial(data[:1], 0) == 0 and streamed.feed_partial(b"", 0) == 0  # nothing whole: nothing


def test_a_file_larger_than_the_memory_allowed_replays_under_it(session, tmp_path):
    """A session padded past LIMIT_MB with system events replays under `prlimit --as` LIMIT_MB, raw and gzip'd,
    into the books of the session alone; the peak RSS it reports stays under the limit."""
    big = tmp_path / "big.bin"
    pad = (LIMIT_MB + 100) * (1 << 20) // len(SYSTEM_EVENT)
    with open(big, "wb") as f:
        f.write(session.read_bytes())
        block = SYSTEM_EVENT * 100_000
        for _ in range(pad // 100_000):
            f.write(block)
    assert big.stat().st_size > LIMIT_MB << 20
    gz = tmp_path / "big.bin.gz"
    with open(big, "rb") as src, gzip.open(gz, "wb", compresslevel=1) as dst:
        while chunk := src.read(16 << 20):
            dst.write(chunk)
    alone = replay(session)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    for path in (big, gz):
        out = subprocess.run(["prlimit", f"--as={LIMIT_MB << 20}", "--", *latlab_cmd("replay", str(path), "--json")],
                             capture_output=True, text=True, cwd=REPO, timeout=300, env=env)
        assert out.returncode == 0, out.stderr[-2000:]
        got = json.loads(out.stdout)
        assert got["errors"] == {} and got["instruments"] == alone.instruments()
        assert got["type_counts"]["S"] == alone.type_counts["S"] + (pad // 100_000) * 100_000
        assert got["peak_rss_mb"] < LIMIT_MB


def test_peak_rss_is_the_replays_own_not_a_forking_parents(session):
    """ru_maxrss survives exec, so a replay started by a big parent (the benchmark, after generating a day) would
    report the parent's peak; the replay reports its own (VmHWM)."""
    parent_mb = 600
    held = np.ones(parent_mb << 17)  # 8-byte floats, written: resident
    out = subprocess.run(latlab_cmd("replay", str(session), "--json"), capture_output=True, text=True, cwd=REPO,
                         timeout=120, check=True)
    assert held[-1] == 1.0
    assert json.loads(out.stdout)["peak_rss_mb"] < parent_mb / 2
