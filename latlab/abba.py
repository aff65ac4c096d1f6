"""Two sides measured in alternating segments, ABBA: the order each segment runs them in, and the note of a row
pooled from its segments. A drift of the host over the run then lands on both sides alike."""

from __future__ import annotations

from collections.abc import Sequence


def segment_order(sides: Sequence[str], segment: int) -> list[str]:
    """The sides of one segment in the order they run: as given in segments 0 and 3 (mod 4), reversed in 1 and 2."""
    return list(sides) if segment % 4 in (0, 3) else list(sides)[::-1]


def interleaved_note(segments: int, others: Sequence[str]) -> str:
    """The note of a row whose samples are `segments` segments alternating with `others`, pooled."""
    return f"{segments} segments alternating with {' and '.join(others)} (ABBA), pooled"
