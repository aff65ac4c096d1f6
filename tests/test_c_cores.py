"""The C cores that have no Python.h (the books, the MoldUDP64 checks, the generator's flow, the trader's path)
built alone with ASan and UBSan and run by their own C tests: what a fuzzing harness or a C user links."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from .conftest import REPO

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")


CORES = {
    "book": (["feed_handler"], ["tests/c/book_core_test.c", "feed_handler/book_core.c"]),
    "mold": (["udp_multicast"], ["tests/c/mold_core_test.c", "udp_multicast/mold_core.c"]),
    "path": (["trader", "feed_handler"],
             ["tests/c/path_core_test.c", "trader/path_core.c", "feed_handler/book_core.c"]),
    "router": (["trader", "feed_handler"],
               ["tests/c/router_core_test.c", "trader/router_core.c", "feed_handler/book_core.c"]),
}


@pytest.mark.parametrize("core", sorted(CORES))
def test_a_core_runs_without_python(tmp_path, core):
    folders, sources = CORES[core]
    exe = tmp_path / f"{core}_core_test"
    built = subprocess.run(["gcc", "-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
                            "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                            *(f"-I{REPO / f}" for f in [*folders, "csrc"]), *(str(REPO / s) for s in sources),
                            "-o", str(exe)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # its own ASan runtime, not a preloaded one
    out = subprocess.run([str(exe)], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"{core} core: all checks passed" in out.stdout


def test_the_c_cores_do_not_include_python():
    for core in ("feed_handler/book_core.c", "feed_handler/book_core.h", "feed_handler/gen_core.c",
                 "feed_handler/gen_core.h", "udp_multicast/mold_core.c", "udp_multicast/mold_core.h",
                 "trader/path_core.c", "trader/path_core.h", "trader/floor.h", "trader/feed_io.h",
                 "trader/fix_order.h", "trader/t2t_common.h", "trader/router_core.c", "trader/router_core.h"):
        assert "#include <Python.h>" not in (REPO / core).read_text(), core
