"""Bad configuration is rejected before anything starts, and the error names the field."""

from __future__ import annotations

import pytest
import yaml

from latlab.bench import plan
from latlab.config import Section, load_config
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
    from feed_handler.t2t_plugin import configure

    assert configure(Section({}, "tick_to_trade")).password == ""
    assert configure(Section({"password": "s3cr3tpw"}, "tick_to_trade")).password == "s3cr3tpw"
    for bad in ("much-too-long-password", "with space", ""):
        with pytest.raises(ConfigError, match=r"tick_to_trade\.password"):
            configure(Section({"password": bad}, "tick_to_trade"))
