"""The trader: its per-packet path (compiled and reference), pre-trade risk, and the tick-to-trade benchmark."""
