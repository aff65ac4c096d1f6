"""Bad configuration is rejected before anything starts, and the error names the field."""

from __future__ import annotations

import pytest
import yaml

from latlab.bench import plan
from latlab.config import load_config
from latlab.errors import ConfigError

GOOD = {"lab": {"hosts": {"a": {"address": "10.77.0.1/24", "cpu": 0}, "b": {"address": "10.77.0.2/24"}}},
        "pingpong": {"sizes": [64]}}


def _with(section: str, **values: object) -> dict:
    cfg = yaml.safe_load(yaml.safe_dump(GOOD))
    cfg.setdefault(section, {}).update(values)
    return cfg


def test_good_config_plans():
    p = plan(GOOD)
    [(bench, params)] = p.benchmarks
    assert bench.name == "pingpong" and params.sizes == [64] and params.receive == "busy-poll"


@pytest.mark.parametrize(("section", "values", "field"), [
    ("pingpong", {"sizes": [0]}, "pingpong.sizes"),
    ("pingpong", {"sizes": [64, -1]}, "pingpong.sizes"),
    ("pingpong", {"rate": -5}, "pingpong.rate"),
    ("pingpong", {"stacks": ["kernel", "warp-drive"]}, "pingpong.stacks"),
    ("pingpong", {"protocols": ["sctp"]}, "pingpong.protocols"),
    ("pingpong", {"receive": "sometimes"}, "pingpong.receive"),
    ("pingpong", {"count": 0}, "pingpong.count"),
    ("pingpong", {"references": ["netperf"]}, "pingpong.references"),
    ("pingpong", {"segments": 4, "duration_s": 2}, "pingpong.segments"),  # sockperf runs whole seconds
    ("pingpong", {"segments": 0}, "pingpong.segments"),
    ("lab", {"mtu": 10}, "lab.mtu"),
    ("tick_to_trade", {"protocol": "itch"}, "tick_to_trade.protocol"),
    ("tick_to_trade", {"engine": "python", "floor": "paired"}, "tick_to_trade.floor"),
    ("tick_to_trade", {"floor": "sometimes"}, "tick_to_trade.floor"),
    ("tick_to_trade", {"group": "10.0.0.1"}, "tick_to_trade.group"),
    ("lab", {"hosts": {"a": {"address": "10.77.0.1"}, "b": {"address": "10.77.0.2/24"}}}, "lab.hosts.a.address"),
    ("lab", {"hosts": {"a": {"address": "10.77.0.1/24"}, "b": {"address": "10.78.0.2/24"}}},
     "lab.hosts.b.address"),
    ("lab", {"hosts": {"a": {"address": "10.77.0.1/24", "cpu": 999}, "b": {"address": "10.77.0.2/24"}}},
     "lab.hosts.a.cpu"),
])
def test_bad_values_name_the_field(section, values, field):
    with pytest.raises(ConfigError) as err:
        plan(_with(section, **values))
    assert err.value.field == field
    assert field in str(err.value)


def test_unknown_section_is_rejected():
    with pytest.raises(ConfigError, match="unknown section"):
        plan({**GOOD, "pingpnog": {}})


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("lab: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_the_exchange_password_is_optional_and_checked_when_given():
    from trader.t2t_plugin import configure

    assert configure({}).password == ""
    assert configure({"password": "s3cr3tpw"}).password == "s3cr3tpw"
    for bad in ("much-too-long-password", "with space", ""):
        with pytest.raises(ConfigError, match=r"tick_to_trade\.password"):
            configure({"password": bad})


@pytest.mark.parametrize(("section", "values", "field", "says"), [
    ("pingpong", {"sizez": [128]}, "pingpong.sizez", "did you mean 'sizes'"),
    ("pingpong", {"duration_s": float("nan")}, "pingpong.duration_s", "finite"),
    ("pingpong", {"timeout_s": float("inf")}, "pingpong.timeout_s", "finite"),
    ("pingpong", {"rate": 1e12}, "pingpong.rate", "less than or equal"),
    ("pingpong", {"count": True}, "pingpong.count", "valid integer"),
    ("pingpong", {"warmup": 1.5}, "pingpong.warmup", "valid integer"),
    ("pingpong", {"sizes": []}, "pingpong.sizes", "at least 1"),
    ("pingpong", {"duration_s": "2s"}, "pingpong.duration_s", "valid number"),
    ("tick_to_trade", {"risk": {"max_order_shares": True}}, "tick_to_trade.risk.max_order_shares", "integer"),
    ("tick_to_trade", {"risk": {"max_shares": 5}}, "tick_to_trade.risk.max_shares", "max_order_shares"),
    ("tick_to_trade", {"race": {"trigers": 5}}, "tick_to_trade.race.trigers", "did you mean 'triggers'"),
    ("multicast", {"subscriber": 3}, "multicast.subscriber", "did you mean 'subscribers'"),
    ("multicast", {"step_seconds": float("nan")}, "multicast.step_seconds", "finite"),
    ("lab", {"hosts": {"a": {"address": "10.77.0.1/24"}, "b": {"address": "10.77.0.2/24"},
                       "c": {"address": "10.77.0.3/24"}}}, "lab.hosts.c", "known: a, b"),
    ("lab", {"mtuu": 9000}, "lab.mtuu", "did you mean 'mtu'"),
    ("results", {"hlog_interval_s": float("nan")}, "results.hlog_interval_s", "finite"),
])
def test_every_key_is_declared_unknown_keys_and_bad_numbers_are_refused(section, values, field, says):
    with pytest.raises(ConfigError) as err:
        plan(_with(section, **values))
    assert err.value.field == field
    assert says in str(err.value)


def test_rdma_section_is_declared_too():
    from rdma.plugin import configure

    assert configure({}).tests == ("send", "write", "read", "ud", "cm")
    for bad, field in (({"iteration": 10}, "rdma.iteration"), ({"device": "mlx5_0; rm -rf /"}, "rdma.device"),
                       ({"vm_timeout_s": float("inf")}, "rdma.vm_timeout_s")):
        with pytest.raises(ConfigError) as err:
            configure(bad)
        assert err.value.field == field


def test_a_single_value_is_a_list_of_one_and_sections_are_immutable():
    params = plan(_with("pingpong", sizes=128, protocols="udp")).benchmarks[0][1]
    assert params.sizes == [128] and params.protocols == ["udp"]
    from pydantic import ValidationError

    from toe_bench.plugin import PingPongConfig

    with pytest.raises(ValidationError):
        PingPongConfig().count = 5  # type: ignore[misc]


def test_a_config_that_is_not_utf8_or_is_a_directory_is_refused(tmp_path):
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("pingpong:\n  engine: c  # caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(latin1)
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_bench_list_names_each_case_its_producer_and_timestamps_and_runs_nothing(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "latlab.cli", "bench", "--list", "--config", "configs/bench.yaml",
                          "--results", str(tmp_path / "r")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "r").exists()
    for line in ("pingpong:", "  udp 64B busy-poll latlab", "samples from: toe_bench.stacks.kernel",
                 "samples from: latlab.reference.qperf", "tick_to_trade:", "samples from: trader.t2t_run"):
        assert line in out.stdout, line
    assert out.stdout.count("timestamps:") == out.stdout.count("samples from:") > 10
