"""Load the sanitizer build of the C extensions (`make sanitized`) in place of the regular one.

`make test-sanitized` sets LATLAB_SANITIZED to the build folder and preloads ASan's runtime; conftest calls
`load_from_env()` before any test imports an extension, so every test of that stage runs the instrumented code.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import os
import sys
from pathlib import Path

ENV = "LATLAB_SANITIZED"


def load(build_dir: Path) -> list[str]:
    """Import every extension module under build_dir (a `build_ext --build-lib` folder) by its dotted name."""
    if not asan_active():
        raise RuntimeError(f"{ENV} is set but ASan's runtime is not loaded: run through `make test-sanitized`")
    loaded = []
    for so in sorted(build_dir.rglob("*.so")):
        rel = so.relative_to(build_dir)
        name = ".".join((*rel.parts[:-1], rel.name.split(".")[0]))
        spec = importlib.util.spec_from_file_location(name, so)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before the parent package imports it
        spec.loader.exec_module(module)
        parent, _, child = name.rpartition(".")
        setattr(importlib.import_module(parent), child, module)
        loaded.append(name)
    return loaded


def load_from_env() -> list[str]:
    """The sanitized modules when LATLAB_SANITIZED names a build folder; otherwise nothing."""
    folder = os.environ.get(ENV)
    return load(Path(folder).resolve()) if folder else []


def asan_active() -> bool:
    """Whether AddressSanitizer's runtime is in this process."""
    try:
        return hasattr(ctypes.CDLL(None), "__asan_init")
    except OSError:
        return False
