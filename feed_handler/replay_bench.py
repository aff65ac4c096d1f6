"""`make bench-replay`: how fast a trading day of ITCH is made and replayed, and what bounds the replay.

1. The generator makes a day-sized session (seed 1; 50 M order-flow messages by default), timed, with the
   Python reference engine timed on a small session beside it.
2. The compiled books replay it RUNS times, each in a fresh process: messages/s (median and spread) and
   peak RSS. The reference books replay a small session for the ratio.
3. Callgrind runs the compiled books over a slice of the session (only inside the books' feed): instructions,
   cache misses and branch mispredictions per message, by function — what the time goes to, counted.

A benchmark: it reports, it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from feed_handler.generator import GenParams, generate_frames, message_count, write_binaryfile

CACHE = Path(".cache/itch")
SMALL = 1_000_000  # order-flow messages of the session both engines replay
D1 = "49152,12,64"  # the machine's L1d (lscpu); callgrind models two levels
LL = "4194304,16,64"  # the per-core L2 as the last level: the VM reports a 480 MB L3 that no core owns


def _session(messages: int) -> GenParams:
    return GenParams(seed=1, messages=messages, instruments=500, live_orders=200_000)


def _generate(params: GenParams, path: Path) -> float:
    """Write the session (atomically: a temporary name, then rename); seconds taken."""
    tmp = path.with_suffix(".tmp")
    started = time.perf_counter()
    write_binaryfile(params, tmp)
    took = time.perf_counter() - started
    os.replace(tmp, path)
    return took


def _session_file(cache: Path, messages: int) -> Path:
    return cache / f"session-seed1-{messages:,}.bin".replace(",", "_")


def _reference_generator_rate(params: GenParams) -> float:
    started = time.perf_counter()
    for _ in generate_frames(params, "python"):
        pass
    return message_count(params) / (time.perf_counter() - started)


def _replay(path: Path, engine: str = "c") -> dict:
    out = subprocess.run([sys.executable, "-m", "latlab.cli", "replay", str(path), "--json", "--engine", engine],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _callgrind(path: Path) -> dict[str, dict[str, int]] | str:
    """Event counts inside the books' feed (callgrind's cache and branch simulation), per function, or why
    there are none."""
    if not shutil.which("valgrind"):
        return "valgrind is not installed"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", "--cache-sim=yes", "--branch-sim=yes", f"--D1={D1}",
                        f"--LL={LL}", "--toggle-collect=book_feed_frames", "--compress-strings=no", "--compress-pos=no",
                        f"--callgrind-out-file={out}", sys.executable, "-m", "latlab.cli", "replay", str(path),
                        "--json"], capture_output=True, check=True)
        return _self_cost(out.read_text())


def _self_cost(text: str) -> dict[str, dict[str, int]]:
    """Each function's own events in a callgrind out file (a call's inclusive line, after 'calls=', skipped)."""
    events: list[str] = []
    totals: dict[str, dict[str, int]] = {}
    fn, skip = "?", False
    for line in text.splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith("fn="):
            fn = line[3:].split("'")[0]
        elif line.startswith("calls="):
            skip = True
        elif line and line[0].isdigit():
            if skip:
                skip = False
                continue
            into = totals.setdefault(fn, dict.fromkeys(events, 0))
            for name, n in zip(events, line.split()[1:], strict=False):
                into[name] += int(n)
    return {fn: t for fn, t in totals.items() if t.get("Ir")}


def _profile_lines(totals: dict[str, dict[str, int]], messages: int) -> list[str]:
    rows = sorted(totals.items(), key=lambda kv: -kv[1].get("Ir", 0))
    all_ = {k: sum(t[k] for _, t in rows) for k in ("Ir", "D1mr", "D1mw", "DLmr", "DLmw", "Bcm", "Bim")}
    lines = [f"  {'function':<22} {'instr/msg':>10} {'D1 miss/msg':>12} {'L2 miss/msg':>12} "
             f"{'cond mispred/msg':>17} {'indirect mispred/msg':>21}"]
    for name, t in [*rows[:6], ("all", all_)]:
        lines.append(f"  {name:<22} {t['Ir'] / messages:>10.1f} {(t['D1mr'] + t['D1mw']) / messages:>12.2f} "
                     f"{(t['DLmr'] + t['DLmw']) / messages:>12.3f} {t['Bcm'] / messages:>17.2f} "
                     f"{t['Bim'] / messages:>21.2f}")
    return lines


def _clock_ghz() -> float:
    """The nominal clock /proc/cpuinfo states (0 when it states none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return float(line.split(":")[1]) / 1000
    except OSError:
        pass
    return 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=50_000_000, help="order-flow messages of the session")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--profile-messages", type=int, default=1_000_000,
                    help="order-flow messages of the slice callgrind runs (0: no profile)")
    ap.add_argument("--cache", type=Path, default=CACHE)
    args = ap.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)

    day = _session(args.messages)
    path = _session_file(args.cache, args.messages)
    took = _generate(day, path)
    made = {args.messages}  # the sessions written by this run: each is made once
    n = message_count(day)
    size_mb = path.stat().st_size / 1e6
    ref_rate = _reference_generator_rate(_session(100_000))
    print(f"generator   {n:,} messages ({size_mb:,.0f} MB) in {took:.1f} s: {n / took / 1e6:.2f} M msg/s compiled; "
          f"the Python reference makes {ref_rate / 1e6:.2f} M msg/s (×{n / took / ref_rate:.0f})")

    runs = [_replay(path) for _ in range(args.runs)]
    rates = sorted(r["messages_per_second"] / 1e6 for r in runs)
    rss = [r["peak_rss_mb"] for r in runs]
    print(f"replay      {n:,} messages, compiled books, {args.runs} runs: "
          + " ".join(f"{r:.2f}" for r in rates) + " M msg/s")
    print(f"            median {statistics.median(rates):.2f} M msg/s, spread {rates[0]:.2f}–{rates[-1]:.2f} "
          f"({(rates[-1] - rates[0]) / statistics.median(rates) * 100:.0f} % of the median); "
          f"peak RSS {max(rss):.0f} MB; file read {statistics.median(r['load_seconds'] for r in runs):.2f} s "
          "(overlapped in pieces, not counted)")
    ghz = _clock_ghz()
    ns = 1e3 / statistics.median(rates)
    print(f"            a message every {ns:.1f} ns" + (f" ≈ {ns * ghz:.0f} cycles at {ghz:.1f} GHz" if ghz else ""))

    small = _session_file(args.cache, SMALL)
    if SMALL not in made:
        _generate(_session(SMALL), small)
        made.add(SMALL)
    c, py = _replay(small, "c"), _replay(small, "python")
    c_rate, py_rate = c["messages_per_second"], py["messages_per_second"]
    print(f"reference   {c['messages']:,} messages: compiled {c_rate / 1e6:.2f} M msg/s, "
          f"Python reference {py_rate / 1e6:.2f} M msg/s (×{c_rate / py_rate:.0f})")

    if args.profile_messages:
        slice_ = _session_file(args.cache, args.profile_messages)
        if args.profile_messages not in made:
            _generate(_session(args.profile_messages), slice_)
        profile = _callgrind(slice_)
        if not profile:
            profile = "callgrind collected nothing inside book_feed_frames (renamed or inlined?)"
        if isinstance(profile, str):
            print(f"profile     skipped: {profile}")
        else:
            count = message_count(_session(args.profile_messages))
            print(f"profile     callgrind over {count:,} messages, inside the books' feed only "
                  f"(D1 {D1.split(',')[0]} B, last level modelled as the {int(LL.split(',')[0]) >> 20} MB L2):")
            print("\n".join(_profile_lines(profile, count)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
