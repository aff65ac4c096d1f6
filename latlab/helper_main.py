"""What the exchange and trader processes do first: read their JSON config, install the signal handlers, pin."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from latlab.signals import start_helper


def start(prog: str, what: str, argv: list[str] | None = None) -> dict[str, Any]:
    """Parse `--config FILE.json [--cpu N]`, stop on SIGINT/SIGTERM, pin when asked; the config's fields."""
    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("--config", type=Path, required=True, help=f"JSON: the fields of {what}")
    p.add_argument("--cpu", type=int)
    args = p.parse_args(argv)
    start_helper(args.cpu)
    return json.loads(args.config.read_text())
