"""`latlab replay` on BinaryFILE, gzip and pcap: the same books, JSON, symbol filter, errors and exit codes."""

from __future__ import annotations

import gzip
import json
import struct
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
    # pcapng is what tshark and dumpcap write by default: the real tool converts the capture
    subprocess.run(["editcap", "-F", "pcapng", str(d / "s.pcap"), str(d / "s.pcapng")], check=True, timeout=60)
    (d / "s.pcapng.gz").write_bytes(gzip.compress((d / "s.pcapng").read_bytes()))
    return d


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(latlab_cmd("replay", *args), capture_output=True, text=True, cwd=REPO, timeout=120)


def test_all_file_kinds_and_both_engines_give_the_same_books(files):
    outs = []
    for name in ("s.bin", "s.bin.gz", "s.pcap", "s.pcapng", "s.pcapng.gz"):
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
    assert [o["format"] for o in outs[4::2]] == ["pcap", "pcapng", "pcapng.gz"] and outs[-1]["packets"] > 100


def test_text_output_and_symbol_filter(files):
    full = json.loads(run(str(files / "s.bin"), "--json").stdout)
    pick = [i["symbol"] for i in full["instruments"][:2]]
    out = run(str(files / "s.bin"), "--symbols", ",".join(pick))
    assert out.returncode == 0
    assert "M messages/s" in out.stdout and "errors      none" in out.stdout
    assert "memory      peak RSS" in out.stdout and "a streamed replay is bounded by" in out.stdout
    rows = [line.split()[0] for line in out.stdout.splitlines()[8:] if line.strip()]
    assert rows == pick
    inst = full["instruments"][0]
    assert inst["bid"]["price"].count(".") == 1 and len(inst["bid"]["price"].split(".")[1]) == 4


def test_errors_set_the_exit_code_and_are_shown_with_offsets(files, tmp_path):
    from latlab.wire.itch import iter_frames

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


def test_a_capture_cut_mid_record_is_an_error_with_the_bytes_not_read(files, tmp_path):
    whole = run(str(files / "s.pcap"), "--json")
    full = json.loads(whole.stdout)
    data = (files / "s.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:len(data) // 2])
    out = run(str(cut))
    assert out.returncode == 2, out.stdout + out.stderr
    assert "pcap_capture_truncated=1" in out.stdout and "bytes after the last whole record were not read" in out.stdout
    report = json.loads(run(str(cut), "--json").stdout)
    assert 0 < report["packets"] < full["packets"] and report["errors"]["pcap_capture_truncated"] == 1
    ngcut = tmp_path / "cut.pcapng"
    ng = (files / "s.pcapng").read_bytes()
    ngcut.write_bytes(ng[:len(ng) - 100])
    assert "pcap_capture_truncated=1" in run(str(ngcut)).stdout


def test_broken_frames_and_a_corrupt_gzip_are_counted_errors_not_tracebacks(files, tmp_path):
    data = (files / "s.pcap").read_bytes()
    sec, frac, caplen, _wire = struct.unpack_from("<IIII", data, 24)
    frame = bytearray(data[40:40 + caplen])
    frame[14] = 0x4F                                   # IHL 15: a 60-byte IP header in a shorter frame
    short = frame[:14 + 40]
    bad = tmp_path / "short-ip.pcap"
    bad.write_bytes(data[:24] + struct.pack("<IIII", sec, frac, len(short), len(short)) + short + data[24:])
    out = run(str(bad))
    assert out.returncode == 2 and "pcap_ip_header_past_frame=1" in out.stdout and "Traceback" not in out.stderr
    raw = (files / "s.bin.gz").read_bytes()
    broken = tmp_path / "broken.bin.gz"
    broken.write_bytes(raw[:len(raw) // 2] + bytes(200) + raw[len(raw) // 2 + 200:])
    out = run(str(broken), "--json")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    report = json.loads(out.stdout)
    assert report["errors"]["gzip_corrupt"] == 1 and report["messages"] > 0  # what came before the damage
