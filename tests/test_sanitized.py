"""The sanitizer stage really runs the instrumented C: every parser of untrusted bytes comes from the ASan/UBSan
build, and an out-of-bounds read is caught (not silently read)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, SANITIZED
from .sanitized import ENV

pytestmark = pytest.mark.skipif(not SANITIZED, reason=f"{ENV} not set: this runs in `make test-sanitized`")
PARSERS = ("feed_handler._book", "feed_handler._gen", "trader._trader", "udp_multicast._mold")


def test_the_parsers_in_use_are_the_sanitized_build():
    build = Path(os.environ[ENV]).resolve()
    for name in PARSERS:
        module = sys.modules[name]
        assert Path(module.__file__).resolve().is_relative_to(build), module.__file__
        assert name in SANITIZED


def test_asan_catches_an_out_of_bounds_read_in_this_stage(tmp_path):
    """The harness itself: a C read past a heap buffer, built like the extensions, aborts with ASan's report."""
    src = tmp_path / "oob.c"
    src.write_text("#include <stdlib.h>\nint main(void){char *p = malloc(8); int x = p[8]; free(p); return x;}\n")
    exe = tmp_path / "oob"
    subprocess.run(["gcc", "-fsanitize=address,undefined", "-g", str(src), "-o", str(exe)], check=True)
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    out = subprocess.run([str(exe)], capture_output=True, text=True, env=env, cwd=REPO)
    assert out.returncode != 0 and "heap-buffer-overflow" in out.stderr
