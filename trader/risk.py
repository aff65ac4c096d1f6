"""Pre-trade risk: the checks whose absence caused the famous losses, and a kill switch.

`RiskGate` is the reference; trader/_trader.c holds the same rules in C (the differential tests
run both on the same orders). Prices have 4 implied decimals as in ITCH/OUCH; notional is in dollars.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

REASONS = ("kill_switch", "duplicate_token", "max_quantity", "max_notional", "price_band", "throttle")


@dataclass(frozen=True)
class RiskLimits:
    """Limits from the config (tick_to_trade.risk)."""

    max_order_shares: int = 1000
    max_notional: float = 1_000_000.0     # dollars per order
    price_band_bps: int = 500             # around the last trade (5 %)
    max_orders_per_second: int = 1000

    def __post_init__(self) -> None:
        if min(self.max_order_shares, self.max_orders_per_second, self.price_band_bps) < 1 or self.max_notional <= 0:
            raise ValueError("risk limits must be positive")


class RiskGate:
    """Checks one order at a time; every reject is counted by reason. Times are ns."""

    def __init__(self, limits: RiskLimits, last_trade: int) -> None:
        self.limits = limits
        self.last_trade = last_trade
        self.killed: str | None = None
        self.tokens: set[bytes] = set()
        self.recent: deque[int] = deque(maxlen=limits.max_orders_per_second)
        self.rejects: Counter[str] = Counter()
        self.passed = 0

    def kill(self, why: str) -> None:
        """The kill switch: no order passes from now on."""
        self.killed = self.killed or why

    def on_trade(self, price: int) -> None:
        if price > 0:
            self.last_trade = price

    def check(self, token: bytes, shares: int, price: int, now_ns: int) -> str | None:
        """None when the order may go, else the reason (one of REASONS)."""
        reason = self._reason(token, shares, price, now_ns)
        if reason:
            self.rejects[reason] += 1
            return reason
        self.tokens.add(token)
        self.recent.append(now_ns)
        self.passed += 1
        return None

    def _reason(self, token: bytes, shares: int, price: int, now_ns: int) -> str | None:
        lim = self.limits
        if self.killed:
            return "kill_switch"
        if token in self.tokens:
            return "duplicate_token"
        if shares > lim.max_order_shares:
            return "max_quantity"
        if shares * price > lim.max_notional * 10_000:
            return "max_notional"
        if abs(price - self.last_trade) * 10_000 > lim.price_band_bps * self.last_trade:
            return "price_band"
        if len(self.recent) == lim.max_orders_per_second and now_ns - self.recent[0] < 1_000_000_000:
            return "throttle"
        return None
