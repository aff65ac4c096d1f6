"""A smart order router across venues: a consolidated book of their feeds, a parent order split into IOC child
orders, the unfilled rest re-routed, child tokens that a retry never turns into a second order.

The split (which venue gets how many shares at what IOC limit) is the compiled `trader._trader.split`
(trader/router_core.c) over compiled books, or `split` here over the reference books: levels best price first,
then more shares, then the venue's lower taker fee, then its shorter measured response time, then its index.

`Router` keeps the parents and their children, and says what to send: `submit` a parent, then feed it what the
venues answer (`on_ack`, `on_fill`, `on_done`) and what happens to them (`venue_down`). What it measured per
parent: completion (first child sent → last fill or cancel), fill rate, and the effective price with fees against
the consolidated best at the decision. It sends nothing itself.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

from feed_handler.book import ASK, BID, Books

Side = Literal["B", "S"]
MAX_DEPTH = 16  # levels per venue the split looks at (as router_core.h)
TOKEN_LEN = 14


@dataclass
class VenueView:
    """What the split sees of one venue."""

    levels: list[tuple[int, int]]  # (price, shares) of the side taken, best first
    taker_fee: int                 # per share, 1/10,000 $
    latency_ns: int
    up: bool = True


def split(venues: list[VenueView], side: Side, shares: int, limit: int) -> list[tuple[int, int, int]]:
    """[(venue index, shares, IOC limit price)]: the reference of router_core.c's router_split."""
    if side not in ("B", "S"):
        raise ValueError("split: side must be 'B' or 'S'")
    buy = side == "B"
    candidates = []
    for i, v in enumerate(venues):
        if not v.up:
            continue
        for price, level_shares in v.levels[:MAX_DEPTH]:
            if (price > limit) if buy else (price < limit):
                break
            candidates.append(((price if buy else -price, -level_shares, v.taker_fee, v.latency_ns, i),
                               price, level_shares, i))
    candidates.sort(key=lambda c: c[0])
    children: dict[int, list[int]] = {}
    left = shares
    for _, price, level_shares, i in candidates:
        if left == 0:
            break
        take = min(level_shares, left)
        child = children.setdefault(i, [i, 0, price])
        child[1] += take
        child[2] = price
        left -= take
    return [tuple(c) for c in children.values()]  # type: ignore[misc]


@dataclass
class VenueSpec:
    """A venue as the router knows it: its name, its books' instrument, its fees."""

    name: str
    locate: int
    taker_fee: int = 0  # per share, 1/10,000 $
    maker_fee: int = 0


@dataclass
class Child:
    token: str
    parent: int
    venue: int
    side: Side
    shares: int
    price: int
    sent_ns: int
    acked_ns: int = 0
    filled: int = 0
    notional: int = 0   # shares × price
    done: bool = False
    lost: bool = False  # its venue went down before it was done: its outcome is unknown
    wave: int = 0       # 0: from the parent's split; n: from its n-th re-route


@dataclass
class Parent:
    id: int
    side: Side
    shares: int
    limit: int
    decided_ns: int
    best_at_decision: int  # the consolidated best price of the side taken, when it was split (0: none)
    children: list[Child] = field(default_factory=list)
    reroutes: int = 0
    done_ns: int = 0

    @property
    def filled(self) -> int:
        return sum(c.filled for c in self.children)

    @property
    def open_shares(self) -> int:
        """Shares of children still open at venues that are up."""
        return sum(c.shares - c.filled for c in self.children if not c.done and not c.lost)

    @property
    def unknown_shares(self) -> int:
        """Shares of children whose venue went down before answering: neither filled nor sent again."""
        return sum(c.shares - c.filled for c in self.children if c.lost)


@dataclass
class Router:
    """Parents and children across `venues` (see the module's text). `books` holds each venue's books (compiled
    `CBooks` for engine "c", reference `Books` for "python"); feed them with `on_market_data`."""

    venues: list[VenueSpec]
    prefix: str = "SR"
    engine: Literal["c", "python"] = "c"
    max_reroutes: int = 3
    latency_weight: float = 0.2  # EWMA weight of each new response time
    books: list[Any] = field(default_factory=list)
    latency_ns: list[int] = field(default_factory=list)
    up: list[bool] = field(default_factory=list)
    parents: dict[int, Parent] = field(default_factory=dict)
    children: dict[str, Child] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("parents", "children", "reroutes", "unknown_token_reports", "retries", "venues_lost"), 0))
    log: list[str] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        if not 1 <= len(self.venues) <= 8:
            raise ValueError("a router needs 1 to 8 venues")
        if len(self.prefix) != 2:
            raise ValueError("the token prefix must be 2 characters")
        if not self.books:
            self.books = [self._new_books() for _ in self.venues]
        self.latency_ns = self.latency_ns or [0] * len(self.venues)
        self.up = self.up or [True] * len(self.venues)

    def _new_books(self) -> Any:
        if self.engine == "python":
            return Books()
        from feed_handler._book import Books as CBooks

        return CBooks(capacity=4096)

    # ---- market data

    def on_market_data(self, venue: int, framed: bytes) -> None:
        """Length-prefixed ITCH messages of one venue's feed."""
        self.books[venue].feed(framed)

    def best(self, venue: int, side: Side) -> tuple[int, int]:
        """(price, shares) of the best level a `side` order takes on one venue; (0, 0) when empty."""
        taken = ASK if side == "B" else BID
        if self.engine == "python":
            book = self.books[venue].books.get(self.venues[venue].locate)
            level = book.best(taken) if book else None
            return (level.price, level.shares) if level else (0, 0)
        bid_price, bid_shares, ask_price, ask_shares = self.books[venue].bbo(self.venues[venue].locate)
        return (ask_price, ask_shares) if side == "B" else (bid_price, bid_shares)

    def consolidated_best(self, side: Side) -> int:
        """The best price a `side` order can take across the venues that are up (0: none)."""
        prices = [price for price, _ in (self.best(v, side) for v in range(len(self.venues)) if self.up[v]) if price]
        if not prices:
            return 0
        return min(prices) if side == "B" else max(prices)

    def _split(self, side: Side, shares: int, limit: int) -> list[tuple[int, int, int]]:
        if self.engine == "python":
            taken = ASK if side == "B" else BID
            views = []
            for v, spec in enumerate(self.venues):
                book = self.books[v].books.get(spec.locate)
                levels = [(lv.price, lv.shares) for lv in book.depth(taken)] if book else []
                views.append(VenueView(levels, spec.taker_fee, self.latency_ns[v], self.up[v]))
            return split(views, side, shares, limit)
        from trader._trader import split as c_split

        return c_split([(self.books[v], spec.locate, spec.taker_fee, self.latency_ns[v], self.up[v])
                        for v, spec in enumerate(self.venues)], side, shares, limit)

    # ---- orders

    def submit(self, side: Side, shares: int, limit: int, now_ns: int) -> list[Child]:
        """A parent order: its children to send now (none when no venue has liquidity within the limit)."""
        if side not in ("B", "S") or shares <= 0 or limit <= 0:
            raise ValueError(f"a parent needs side B or S, shares > 0 and a limit > 0 (got {side}, {shares}, {limit})")
        parent = Parent(next(self._ids), side, shares, limit, now_ns, self.consolidated_best(side))
        self.parents[parent.id] = parent
        self.counts["parents"] += 1
        out = self._route(parent, shares, now_ns)
        if not out:
            parent.done_ns = now_ns
        return out

    def _route(self, parent: Parent, shares: int, now_ns: int) -> list[Child]:
        out = []
        for venue, child_shares, price in self._split(parent.side, shares, parent.limit):
            number = len(parent.children) + 1
            token = f"{self.prefix}{parent.id:06d}{number:06d}"
            child = Child(token, parent.id, venue, parent.side, child_shares, price, now_ns, wave=parent.reroutes)
            parent.children.append(child)
            self.children[token] = child
            out.append(child)
        self.counts["children"] += len(out)
        return out

    def retry(self, token: str) -> Child:
        """The same child again (after a reconnect, say): the same token, so the venue takes it once at most."""
        self.counts["retries"] += 1
        return self.children[token]

    def _child(self, token: str, what: str) -> Child | None:
        child = self.children.get(token)
        if child is None:
            self.counts["unknown_token_reports"] += 1
            self.log.append(f"{what} for unknown child token {token!r}: ignored")
        return child

    def on_ack(self, token: str, now_ns: int) -> None:
        """The venue accepted the child: its response time feeds the venue's measured latency."""
        child = self._child(token, "ack")
        if child is None or child.acked_ns:
            return
        child.acked_ns = now_ns
        took = now_ns - child.sent_ns
        v = child.venue
        old = self.latency_ns[v]
        self.latency_ns[v] = took if old == 0 else round(old + self.latency_weight * (took - old))

    def on_fill(self, token: str, shares: int, price: int, now_ns: int) -> None:
        child = self._child(token, "fill")
        if child is None:
            return
        if child.done or child.filled + shares > child.shares:
            self.counts["unknown_token_reports"] += 1
            self.log.append(f"fill of {shares} for {token!r} past its {child.shares} shares: ignored")
            return
        child.filled += shares
        child.notional += shares * price

    def on_done(self, token: str, now_ns: int) -> list[Child]:
        """The child is finished (filled, or its IOC rest canceled): what is left of the parent goes out again."""
        child = self._child(token, "done")
        if child is None or child.done:
            return []
        child.done = True
        return self._after(self.parents[child.parent], now_ns)

    def venue_down(self, venue: int, now_ns: int) -> list[Child]:
        """A venue went away: no more routing there; its open children are lost (their outcome unknown, never sent
        again elsewhere), and what was never placed goes to the other venues."""
        if not self.up[venue]:
            return []
        self.up[venue] = False
        self.counts["venues_lost"] += 1
        self.log.append(f"venue {self.venues[venue].name} down")
        out: list[Child] = []
        for parent in self.parents.values():
            touched = False
            for c in parent.children:
                if c.venue == venue and not c.done:
                    c.lost = True
                    touched = True
            if touched:
                out += self._after(parent, now_ns)
        return out

    def _after(self, parent: Parent, now_ns: int) -> list[Child]:
        if parent.done_ns:
            return []
        rest = parent.shares - parent.filled - parent.open_shares - parent.unknown_shares
        out: list[Child] = []
        if rest > 0 and parent.reroutes < self.max_reroutes and parent.open_shares == 0:
            parent.reroutes += 1
            self.counts["reroutes"] += 1
            out = self._route(parent, rest, now_ns)
        if not out and parent.open_shares == 0:
            parent.done_ns = now_ns
        return out

    # ---- what was measured

    def outcome(self, parent_id: int) -> dict[str, Any]:
        """A parent's result: fills, what is left, completion time, effective price with fees against the
        consolidated best when it was split (slippage: positive is worse for the parent)."""
        p = self.parents[parent_id]
        filled = p.filled
        fees = sum(c.filled * self.venues[c.venue].taker_fee for c in p.children)
        notional = sum(c.notional for c in p.children)
        effective = (notional + fees) / filled if filled and p.side == "B" else \
            (notional - fees) / filled if filled else 0.0
        sign = 1 if p.side == "B" else -1
        first_sent = min((c.sent_ns for c in p.children), default=p.decided_ns)
        return {"parent": p.id, "side": p.side, "shares": p.shares, "filled": filled,
                "fill_rate": filled / p.shares, "unfilled": p.shares - filled - p.unknown_shares,
                "unknown": p.unknown_shares, "children": len(p.children), "reroutes": p.reroutes,
                "done": bool(p.done_ns), "completion_ns": (p.done_ns - first_sent) if p.done_ns else None,
                "effective_price": effective, "best_at_decision": p.best_at_decision,
                "slippage": sign * (effective - p.best_at_decision) if filled and p.best_at_decision else None,
                "venues": sorted({self.venues[c.venue].name for c in p.children})}
