"""latlab's engine and the native tool on one cell, alternating in segments (ABBA), each side's segments pooled.

On these hosts the speed of the path drifts over seconds (a noisy neighbour, the hypervisor): two runs back to
back, each two seconds long, can differ by a quarter. Cut each engine's run into segments that alternate —
latlab, sockperf, sockperf, latlab, latlab, … — and the drift lands on both sides alike, so their ratio keeps
what the engines do and loses most of what the host did meanwhile. Each segment is a whole run of its own
(processes started, warm-up discarded, evidence read), on a port of its own.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from latlab.abba import interleaved_note, segment_order
from latlab.errors import LatlabError
from latlab.plugin import RunContext
from latlab.results import RTT, CaseResult
from toe_bench.stacks.base import CaseSpec, group_name

if TYPE_CHECKING:
    from toe_bench.plugin import PingPongParams, StackCase


def segment_params(params: PingPongParams, segments: int) -> PingPongParams:
    """What one segment runs: its share of the duration and of the sample count."""
    return replace(params, duration_s=params.duration_s / segments, count=math.ceil(params.count / segments))


def pool(rows: Sequence[CaseResult], others: Sequence[str]) -> CaseResult:
    """One row from one engine's segments, in the order they ran: samples concatenated (so send times stay in time
    order), warm-ups summed, complete only if every segment was. Every segment's evidence stays in params; a
    segment without figures (not accelerated, failed) voids the pooled row, which then says which segment and why."""
    first = rows[0]
    for k, row in enumerate(rows, start=1):
        if row.samples_ns is None:
            return replace(row, complete=False,
                           note=f"segment {k} of {len(rows)}: {row.note}" if row.note else f"segment {k}: no samples")

    def joined(name: str) -> np.ndarray | None:
        parts = [getattr(r, name) for r in rows]
        return None if any(p is None for p in parts) else np.concatenate(parts)

    evidence = [r.params.get("evidence") for r in rows]
    params = {**first.params, "segments": len(rows)}
    if any(e is not None for e in evidence):
        params["evidence"] = {"holds": all(e is None or e.get("holds", False) for e in evidence), "segments": evidence}
    lapses = [f"segment {k}: {r.note}" for k, r in enumerate(rows, start=1) if not r.complete]
    note = "; ".join(n for n in (interleaved_note(len(rows), others),
                                 f"{first.note} (segment 1; each segment's evidence in params)" if first.note else "",
                                 *lapses) if n)
    return replace(first, samples_ns=joined("samples_ns"), send_ns=joined("send_ns"),
                   corrected_ns=joined("corrected_ns"), warmup=sum(r.warmup for r in rows),
                   complete=all(r.complete for r in rows), note=note, params=params)


@dataclass
class InterleavedCase:
    """The engines of one matrix cell (latlab's and the native tool's StackCases) run as one case, in segments."""

    params: PingPongParams
    stack: str
    spec: CaseSpec
    engines: list[str]
    segments: int

    def _case(self, engine: str, segment: int) -> StackCase:
        from toe_bench.plugin import StackCase

        port = self.spec.port + segment * len(self.engines) + self.engines.index(engine)
        return StackCase(segment_params(self.params, self.segments), self.stack, replace(self.spec, port=port), engine)

    @property
    def ports(self) -> int:
        """How many ports the case uses from spec.port on: one per engine per segment."""
        return self.segments * len(self.engines)

    @property
    def group(self) -> str:
        return group_name(self.stack, self.spec.proto, self.spec.size, self.spec.receive)

    @property
    def title(self) -> str:
        return f"{self.group} {' ⇄ '.join(self.engines)} ({self.segments} segments)"

    @property
    def producer(self) -> str:
        return "; ".join(f"{e}: {self._case(e, 0).producer}" for e in self.engines)

    @property
    def timestamps(self) -> str:
        return "; ".join(f"{e}: {self._case(e, 0).timestamps}" for e in self.engines)

    @property
    def expected_seconds(self) -> float:
        return self.segments * sum(self._case(e, 0).expected_seconds for e in self.engines)

    def run(self, ctx: RunContext) -> list[CaseResult]:
        """Every segment in ABBA order; then one pooled row per row an engine gives (its own, and any beside it)."""
        by_engine: dict[str, list[list[CaseResult]]] = {e: [] for e in self.engines}
        for segment in range(self.segments):
            for engine in segment_order(self.engines, segment):
                rows = self._run_segment(engine, segment, ctx)
                by_engine[engine].append(rows)
                if any(r.interrupted for r in rows):
                    return self._pooled(by_engine)  # what was measured so far; the bench stops the run
        return self._pooled(by_engine)

    def _run_segment(self, engine: str, segment: int, ctx: RunContext) -> list[CaseResult]:
        """One engine's segment; a failure is that segment's row (the other engine keeps what it measured)."""
        case = self._case(engine, segment)
        try:
            return case.run(ctx)
        except LatlabError as exc:
            print(f"latlab: {case.title} (segment {segment + 1}): {exc}", file=sys.stderr)
            return [CaseResult(group=self.group, engine=engine, role="failed", metric=RTT, timestamps="",
                               complete=False, note=f"failed: {exc}")]

    def _pooled(self, by_engine: dict[str, list[list[CaseResult]]]) -> list[CaseResult]:
        out = []
        for engine, runs in by_engine.items():
            if not runs:
                continue
            others = [e for e in self.engines if e != engine]
            for index in range(max(len(r) for r in runs)):
                out.append(pool([r[index] for r in runs if index < len(r)], others))
        return out
