"""`latlab replay` and `latlab gen-itch` (plugged into the latlab command through `latlab.commands`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from feed_handler.generator import GenParams, write_binaryfile, write_pcap

EXIT_CLEAN, EXIT_FAILED, EXIT_ERRORS_SEEN = 0, 1, 2


def _cmd_replay(args: argparse.Namespace) -> int:
    from feed_handler.replay import replay

    if not args.file.is_file():
        print(f"latlab replay: {args.file}: no such file", file=sys.stderr)
        return EXIT_FAILED
    try:
        result = replay(args.file, engine=args.engine)
    except (OSError, ValueError, EOFError) as exc:
        print(f"latlab replay: {args.file}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    only = set(args.symbols.split(",")) if args.symbols else None
    if args.json:
        print(json.dumps(result.to_json(only), indent=2))
    else:
        print(_text(result, only))
    return EXIT_ERRORS_SEEN if result.errors else EXIT_CLEAN


def _bound(result) -> str:
    """Which of reading (decompressing) and the books took longer: what bounds a streamed replay."""
    what = "decompressing" if result.format.endswith(".gz") else "reading"
    slower = what if result.load_seconds > result.feed_seconds else "the books"
    return f"a streamed replay is bounded by {slower}"


def _text(result, only: set[str] | None) -> str:
    lines = [
        f"file        {result.path} ({result.format}, {result.engine} books)",
        f"messages    {result.messages:,}" + (f" in {result.packets:,} packets" if result.packets else ""),
        f"replay      {result.feed_seconds:.3f} s, {result.rate / 1e6:.2f} M messages/s "
        f"(file read/decompress {result.load_seconds:.3f} s, not included: {_bound(result)})",
        f"memory      peak RSS {result.peak_rss_mb:.0f} MB (the file is streamed)",
        "types       " + " ".join(f"{t}={n:,}" for t, n in result.type_counts.items()),
        "errors      " + (" ".join(f"{k}={n:,}" for k, n in sorted(result.errors.items())) or "none"),
    ]
    for s in result.error_samples:
        where = f"offset {s['offset']}" if "offset" in s else f"packet {s['packet']}"
        lines.append(f"  {s['kind']} at {where}: " + " ".join(x for x in (s["hex"], s.get("detail", "")) if x))
    lines.append("")
    lines.append(f"{'symbol':<8} {'bid':>20} {'ask':>20} {'bid lvls':>8} {'ask lvls':>8} {'orders':>7}")
    for inst in result.instruments(only):
        bid = f"{inst['bid']['shares']:,} @ {inst['bid']['price']}" if inst["bid"] else "-"
        ask = f"{inst['ask']['shares']:,} @ {inst['ask']['price']}" if inst["ask"] else "-"
        lines.append(f"{inst['symbol']:<8} {bid:>20} {ask:>20} {inst['bid_levels']:>8} {inst['ask_levels']:>8} "
                     f"{inst['orders']:>7}")
    return "\n".join(lines)


def _cmd_gen(args: argparse.Namespace) -> int:
    params = GenParams(seed=args.seed, messages=args.messages, instruments=args.instruments,
                       live_orders=args.live_orders, session=args.session)
    out: Path = args.out
    if out.exists() and not args.force:
        print(f"latlab gen-itch: {out} exists (use --force to replace it)", file=sys.stderr)
        return EXIT_FAILED
    if args.pcap:
        messages, packets = write_pcap(params, out)
        print(f"{out}: {messages:,} messages in {packets:,} MoldUDP64 packets")
    else:
        messages = write_binaryfile(params, out)
        print(f"{out}: {messages:,} messages (BinaryFILE{', gzip' if out.suffix == '.gz' else ''})")
    return EXIT_CLEAN


def register(sub: argparse._SubParsersAction) -> None:
    """Add the feed handler's subcommands to the latlab parser."""
    rp = sub.add_parser("replay", help="replay an ITCH 5.0 BinaryFILE (.gz too) or MoldUDP64 pcap into books")
    rp.add_argument("file", type=Path)
    rp.add_argument("--json", action="store_true", help="print JSON instead of text")
    rp.add_argument("--symbols", help="comma-separated symbols to show")
    rp.add_argument("--engine", choices=("c", "python"), default="c",
                    help="c: compiled books (default); python: the reference books")
    rp.set_defaults(func=_cmd_replay)

    gp = sub.add_parser("gen-itch", help="generate a seeded ITCH 5.0 session (BinaryFILE or pcap)")
    gp.add_argument("out", type=Path, help="output file (.gz: gzip BinaryFILE; with --pcap: pcap)")
    gp.add_argument("--seed", type=int, default=1)
    gp.add_argument("--messages", type=int, default=1_000_000, help="order-flow messages")
    gp.add_argument("--instruments", type=int, default=200)
    gp.add_argument("--live-orders", type=int, default=20_000, help="live orders held near this count")
    gp.add_argument("--session", default="LATLAB0001")
    gp.add_argument("--pcap", action="store_true", help="write MoldUDP64 packets in a pcap")
    gp.add_argument("--force", action="store_true", help="replace an existing output file")
    gp.set_defaults(func=_cmd_gen)
