"""`python -m rdma.driver --role server|client ...` (a DriverConfig): one side of verbs tests, as a process.

The client writes its samples (.npz) and both say one RESULT per test (a VerbsResult): what they did, or the error.

With `segments` N > 1 each test runs N times on the same two processes, the client starting each segment when its
parent writes that segment's iteration count on its standard input (one line; an empty line or end of input stops
it), so that a parent can interleave another tool's runs between latlab's segments without restarting latlab.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from latlab.cpu import gc_paused
from latlab.errors import LatlabError
from latlab.helper import HelperConfig, HelperResult, say_ready, say_result
from latlab.helper_main import start
from rdma.devices import Gid, pick_gid
from rdma.verbs import TESTS, Options, run_client, run_server


class DriverConfig(HelperConfig):
    """One side of one or more verbs tests."""

    role: Literal["server", "client"]
    device: str
    port: int = Field(1, ge=1, description="device port")
    gid_index: int | None = Field(None, description="default: the RoCEv2 IPv4 GID of netdev (or the first)")
    netdev: str | None = Field(None, description="pick the GID of this netdev")
    tests: str = Field("send", description=f"comma-separated, run in order: {','.join(TESTS)}")
    size: int = Field(64, ge=1)
    iterations: int = Field(1000, ge=1)
    warmup: int = Field(100, ge=0)
    duration: float = Field(0.0, ge=0)
    inline: bool = True
    events: bool = Field(False, description="wait on CQ events instead of polling")
    timeout: float = Field(10.0, gt=0, description="no answer for this long: the peer is gone")
    host: str = Field("0.0.0.0", description="server: bind address; client: server address")
    tcp_port: int = Field(18515, ge=1, le=65535)
    impl: Literal["c", "python"] = Field("c", description="c: compiled endpoint; python: the pyverbs reference")
    fault: Literal["", "bad-rkey"] = Field("", description="inject a fault (for tests)")
    segments: int = Field(1, ge=1, description="run each test this many times; the client paced by its stdin")
    accept_timeout: float = Field(30.0, gt=0, description="server: wait this long for each segment's client")
    cpu: int | None = None
    out: Path | None = Field(None, description="client: folder for one <test>.npz per test")

    @field_validator("tests")
    @classmethod
    def _known_tests(cls, tests: str) -> str:
        bad = [t for t in tests.split(",") if t not in TESTS]
        if bad:
            raise ValueError(f"unknown test {bad[0]!r}; known: {', '.join(TESTS)}")
        return tests

    @model_validator(mode="after")
    def _client_has_its_folder(self) -> DriverConfig:
        if self.role == "client" and self.out is None:
            raise ValueError("the client needs out (a folder for its samples)")
        return self


class VerbsResult(HelperResult):
    """One test's outcome on one side; the client's samples are in out/<test>.npz."""

    test: str = ""
    segment: int = 0
    status: str
    error: str = ""
    measured: int = 0
    warmup: int = 0
    answered: int = 0  # server
    gid_index: int | None = None
    gid: str = ""
    inline: bool | None = None
    impl: str = ""


def main(argv: list[str] | None = None) -> int:
    """Run every test of `tests` (each `segments` times); one RESULT per run. Exit 1 if any failed."""
    args = start(DriverConfig, "python -m rdma.driver", argv)
    failed = False
    for test in args.tests.split(","):
        for segment in range(args.segments):
            record = _segment(args, test, segment)
            failed |= record.status != "ok"
            say_result(record)
            if record.status in ("interrupted", "stopped"):
                return 1
    return 1 if failed else 0


def _segment(args: DriverConfig, test: str, segment: int) -> VerbsResult:
    """One run of `test`; a paced client first waits for its iteration count on stdin."""
    try:
        iterations = args.iterations
        if args.segments > 1 and args.role == "client":
            line = sys.stdin.readline().strip()
            if not line:
                return VerbsResult(test=test, segment=segment, status="stopped",
                                   error=f"the parent ended the run before segment {segment} of {args.segments}")
            try:
                iterations = int(line)
            except ValueError as exc:
                raise LatlabError(f"segment {segment}: {exc}") from None
        opts = Options(test=test, size=args.size, iterations=iterations, warmup=args.warmup,
                       duration_s=args.duration, inline=args.inline, events=args.events,
                       timeout_s=args.timeout, fault=args.fault)
        return VerbsResult(test=test, segment=segment, **_one(args, opts, segment))
    except LatlabError as exc:
        return VerbsResult(test=test, segment=segment, status="error", error=str(exc))
    except KeyboardInterrupt:
        return VerbsResult(test=test, segment=segment, status="interrupted")


def samples_path(out: Path, test: str, segment: int, segments: int) -> Path:
    """Where the client keeps a run's samples: out/<test>.npz, or out/<test>.seg<k>.npz when segmented."""
    return out / (f"{test}.npz" if segments == 1 else f"{test}.seg{segment}.npz")


def _save_samples(args: DriverConfig, test: str, segment: int, out: dict[str, object]) -> dict[str, object]:
    """Write a client run's samples to samples_path, atomically; the rest of `out` is returned."""
    assert args.out is not None  # the config's validator
    args.out.mkdir(parents=True, exist_ok=True)
    path = samples_path(args.out, test, segment, args.segments)
    tmp = Path(str(path) + ".tmp.npz")
    np.savez(tmp, rtt_ns=out.pop("rtt_ns"), send_ns=out.pop("send_ns"))
    os.replace(tmp, path)
    return out


def _one(args: DriverConfig, opts: Options, segment: int) -> dict[str, object]:
    gid = pick_gid(args.device, args.port, args.gid_index, args.netdev)
    if opts.test == "cm":
        return _one_cm(args, opts, gid, segment)
    if args.role == "server":
        record = run_server(args.device, args.port, gid.index, opts, args.host, args.tcp_port,
                            accept_timeout=args.accept_timeout,
                            ready=lambda port: say_ready(test=opts.test, segment=segment, port=port), impl=args.impl)
    else:
        with gc_paused():
            out = run_client(args.device, args.port, gid.index, opts, args.host, args.tcp_port, impl=args.impl)
        record = _save_samples(args, opts.test, segment, out)
    return {"status": "ok", **record, "gid_index": gid.index, "gid": gid.gid, "inline": opts.inline, "impl": args.impl}


def _one_cm(args: DriverConfig, opts: Options, gid: Gid, segment: int) -> dict[str, object]:
    """The rdma_cm test: the connection is set up by rdma_cm on tcp_port + 1 (no TCP exchange)."""
    from rdma.cm import cm_client, cm_server

    port = args.tcp_port + 1
    if args.role == "server":
        record = cm_server(args.host, port, opts, ready=lambda p: say_ready(test="cm", port=p))
    else:
        out = cm_client(args.host, port, opts, src=gid.ipv4)
        record = _save_samples(args, "cm", segment, out)
    return {"status": "ok", **record, "gid_index": gid.index, "gid": gid.gid, "impl": "python (rdma_cm)"}


if __name__ == "__main__":
    sys.exit(main())
