"""The house rules of the layout: benchmark packages share code only through the core and the wire-format
package; the market-data and venue libraries import no benchmark; the core imports none of them."""

from __future__ import annotations

import ast

import pytest

from .conftest import REPO

BENCHMARKS = {"toe_bench", "udp_multicast", "rdma", "trader"}
LIBRARIES = {"feed_handler", "venue"}  # used by the trader benchmark; they use no benchmark
OURS = BENCHMARKS | LIBRARIES | {"latlab", "hostprep"}


def _imports(package: str) -> dict[str, set[str]]:
    """file → the top-level packages of ours it imports (absolute imports, anywhere in the file)."""
    out: dict[str, set[str]] = {}
    for path in sorted((REPO / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        out[str(path.relative_to(REPO))] = names & OURS
    return out


@pytest.mark.parametrize("package", sorted(BENCHMARKS))
def test_no_benchmark_package_imports_another(package):
    others = BENCHMARKS - {package}
    bad = {f: sorted(n & others) for f, n in _imports(package).items() if n & others}
    assert not bad, f"{package} imports other benchmark packages: {bad}"


@pytest.mark.parametrize("package", sorted(LIBRARIES | {"latlab"}))
def test_the_core_and_the_libraries_import_no_benchmark(package):
    bad = {f: sorted(n & BENCHMARKS) for f, n in _imports(package).items() if n & BENCHMARKS}
    assert not bad, f"{package} imports benchmark packages: {bad}"


def test_feed_handler_holds_market_data_only():
    names = {p.name for p in (REPO / "feed_handler").iterdir() if p.suffix in (".py", ".c", ".h")}
    assert not names & {"exchange.py", "matching.py", "order_entry.py", "trader.py", "trader_core.py", "risk.py",
                        "itch.py", "ouch.py", "soupbintcp.py", "fix44.py", "_trader.c"}


def test_the_readme_layout_table_names_every_top_level_package():
    readme = (REPO / "README.md").read_text()
    packages = {p.name for p in REPO.iterdir() if (p / "__init__.py").exists() and p.name != "tests"}
    missing = {p for p in packages | {"latlab/wire"} if f"| `{p}/` |" not in readme}
    assert not missing, f"README layout table lacks {sorted(missing)}"


def test_the_leftover_check_sees_a_namespace_and_a_process_left_behind():
    """The autouse check that runs after every test would catch what this test leaves (until it cleans up)."""
    import secrets
    import subprocess
    import sys

    from .conftest import NETNS_REASON, _host_state, _left_behind

    if NETNS_REASON:
        pytest.skip(f"netns unavailable: {NETNS_REASON}")
    before = _host_state()
    name = f"latlab-leak-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        new = _left_behind(before, grace_s=0)
        assert new["netns"] == [name]
        assert any(entry.startswith(f"{sleeper.pid} ") for entry in new["child processes"])
    finally:
        sleeper.kill()
        sleeper.wait()
        subprocess.run(["ip", "netns", "del", name], check=True)
    assert _left_behind(before, grace_s=2) == {}
