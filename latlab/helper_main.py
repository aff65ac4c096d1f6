"""What a helper process does first: read its typed config, install the signal handlers, pin when asked."""

from __future__ import annotations

from typing import TypeVar

from latlab.helper import HelperConfig
from latlab.signals import start_helper

C = TypeVar("C", bound=HelperConfig)


def start(model: type[C], prog: str, argv: list[str] | None = None) -> C:
    """The helper's config (`model.from_argv`); SIGINT/SIGTERM end its loop; pinned to the config's `cpu`, if any."""
    cfg = model.from_argv(argv, prog)
    start_helper(getattr(cfg, "cpu", None))
    return cfg
