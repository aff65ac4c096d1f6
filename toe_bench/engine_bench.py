"""`make bench-engine`: latlab's compiled ping-pong loop against its pure-Python reference, on loopback.

The same server and client processes (toe_bench.engine, started with an EngineConfig) run with impl c and impl
python in alternation, TRIALS times, each pinned (client and server on their own CPUs when there are two), busy
polling. Per trial: each loop's median round trip and the ratio c ÷ python; then the median ratio over the
trials. This is where the compiled loop's advantage is shown (the unit tests only check both loops agree).

A benchmark: it reports, it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from latlab import helper
from latlab.cpu import available_cpus
from latlab.procs import Proc, running
from toe_bench.engine import COMMAND as ENGINE
from toe_bench.engine import EngineConfig, EngineResult


def one_round(impl: str, proto: str, count: int, workdir: Path, tag: str) -> float:
    """Median round trip (µs) of `count` measured round trips with both sides on `impl`."""
    cpus = available_cpus()
    server_cpu, client_cpu = (cpus[0], cpus[1]) if len(cpus) > 1 else (None, None)
    common = {"proto": proto, "host": "127.0.0.1", "impl": impl, "busy": True}
    server = EngineConfig(role="server", port=0, cpu=server_cpu, idle_timeout=60, **common)
    with running([*ENGINE, *server.argv()], workdir / f"server-{tag}.log", f"{impl} server", ready="READY") as srv:
        port = int(helper.ready_fields(srv.output())["port"])
        out = workdir / f"{tag}.npz"
        client = EngineConfig(role="client", port=port, cpu=client_cpu, warmup=2000, count=count, out=out, **common)
        cli = Proc([*ENGINE, *client.argv()], workdir / f"client-{tag}.log", f"{impl} client")
        cli.wait(timeout=300)
        status = helper.result(cli.output(), EngineResult, f"{impl} client")
    if status.status != "ok":
        raise SystemExit(f"{impl} client: {status.status} {status.error}")
    return float(np.median(np.load(out)["rtt_ns"])) / 1000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m toe_bench.engine_bench", description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--count", type=int, default=100_000, help="measured round trips per loop and trial")
    p.add_argument("--proto", choices=("udp", "tcp"), default="udp")
    args = p.parse_args(argv)
    ratios = []
    with tempfile.TemporaryDirectory(prefix="latlab-engine-bench-") as tmp:
        print(f"ping-pong on loopback, {args.proto}, 64 B, busy polling, {args.count:,} round trips per loop and "
              f"trial; p50 in µs")
        for trial in range(1, args.trials + 1):
            order = ("c", "python") if trial % 2 else ("python", "c")  # neither always goes first
            p50 = {impl: one_round(impl, args.proto, args.count, Path(tmp), f"{impl}-{trial}") for impl in order}
            ratios.append(p50["c"] / p50["python"])
            print(f"  trial {trial}: compiled {p50['c']:.2f}  python {p50['python']:.2f}  "
                  f"compiled ÷ python {ratios[-1]:.3f}")
    print(f"compiled ÷ python p50, median of {len(ratios)} trials: {statistics.median(ratios):.3f} "
          f"[{min(ratios):.3f}–{max(ratios):.3f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
