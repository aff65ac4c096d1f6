"""`latlab replay` on BinaryFILE, gzip and pcap: the same books, JSON, symbol filter, errors and exit codes."""

from __future__ import annotations

import json
import subprocess

import pytest

from feed_handler.generator import GenParams, write_binaryfile, write_pcap

from .conftest import REPO, latlab_cmd

PARAMS = GenParams(seed=3, messages=20_000, instruments=12, live_orders=1_000)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("replay")
    write_binaryfile(PARAMS, d / "s.bin")
    write_binaryfile(PARAMS, d / "s.bin.gz")
    write_pcap(PARAMS, d / "s.pcap")
    return d


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(latlab_cmd("replay", *args), capture_output=True, text=True, cwd=REPO, timeout=120)


def test_all_file_kinds_and_both_engines_give_the_same_books(files):
    outs = []
    for name in ("s.bin", "s.bin.gz", "s.pcap"):
        for engine in ("c", "python"):
            out = run(str(files / name), "--json", "--engine", engine)
            assert out.returncode == 0, out.stderr
            outs.append(json.loads(out.stdout))
    first = outs[0]
    assert first["errors"] == {} and first["messages"] > 20_000
    assert first["type_counts"]["R"] == 12
    for other in outs[1:]:
        assert other["instruments"] == first["instruments"]
        assert other["type_counts"] == first["type_counts"]
    assert outs[-1]["format"] == "pcap" and outs[-1]["packets"] > 100


def test_text_output_and_symbol_filter(files):
    full = json.loads(run(str(files / "s.bin"), "--json").stdout)
    pick = [i["symbol"] for i in full["instruments"][:2]]
    out = run(str(files / "s.bin"), "--symbols", ",".join(pick))
    assert out.returncode == 0
    assert "M messages/s" in out.stdout and "errors      none" in out.stdout
    rows = [line.split()[0] for line in out.stdout.splitlines()[7:] if line.strip()]
    assert rows == pick
    inst = full["instruments"][0]
    assert inst["bid"]["price"].count(".") == 1 and len(inst["bid"]["price"].split(".")[1]) == 4


def test_errors_set_the_exit_code_and_are_shown_with_offsets(files, tmp_path):
    from feed_handler.itch import iter_frames

    data = (files / "s.bin").read_bytes()
    boundary = [off for off, _, _ in iter_frames(data)][100]
    damaged = tmp_path / "damaged.bin"
    damaged.write_bytes(data[:boundary] + b"\x00\x05Zjunk" + data[boundary:-7])  # a bad type, a cut tail
    out = run(str(damaged))
    assert out.returncode == 2
    assert "truncated=1" in out.stdout and "unknown_type=1" in out.stdout
    assert f"unknown_type at offset {boundary}: 5a 6a 75 6e 6b" in out.stdout
    assert "truncated at offset" in out.stdout
    clean = run(str(files / "s.bin"))
    assert clean.returncode == 0


def test_a_file_that_is_not_itch_is_reported_not_crashed(tmp_path):
    junk = tmp_path / "junk.txt"
    junk.write_text("this is not an ITCH file at all\n" * 100)
    out = run(str(junk), "--json")
    assert out.returncode == 2
    report = json.loads(out.stdout)
    assert report["errors"] and report["instruments"] == []
    missing = run(str(tmp_path / "nope.bin"))
    assert missing.returncode == 1 and "no such file" in missing.stderr
