"""The helper-process protocol: a typed config in, READY with its fields, one typed RESULT last, or an ERROR the
parent raises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field, ValidationError

from latlab import helper
from latlab.errors import LatlabError
from toe_bench.engine import EngineConfig

HELPER_PROLOGUE = """
from latlab.helper import HelperResult, say_ready, say_result, say_error
class Count(HelperResult):
    status: str
    n: int = 0
"""


class Count(helper.HelperResult):
    status: str
    n: int = 0


class Probe(helper.HelperConfig):
    """A helper's config with one field of each kind a flag can carry, and one that only JSON can."""

    role: Literal["client", "server"]
    port: int = Field(ge=0, le=65535)
    busy: bool = False
    rate: float = 0.0
    cpu: int | None = None
    out: Path | None = None
    users: dict[str, str] = Field(default_factory=dict)


def _speak(code: str) -> str:
    """What a helper written with latlab.helper prints."""
    return subprocess.run([sys.executable, "-c", HELPER_PROLOGUE + code], capture_output=True, text=True,
                          check=True).stdout


def test_ready_fields_then_the_last_result_amid_other_output():
    out = _speak("say_ready(port=4242)\nprint('a log line {not json}')\nsay_result(Count(status='ok', n=1))\n"
                 "say_result(Count(status='ok', n=2))")
    assert helper.ready_fields(out) == {"port": 4242}
    assert helper.result(out, Count) == Count(status="ok", n=2)
    assert [r.n for r in helper.results(out, Count)] == [1, 2]
    assert helper.ready_fields(_speak("say_ready()")) == {}


def test_an_error_is_raised_with_its_kind_and_a_silent_helper_is_named():
    out = _speak("say_ready()\nsay_error('config', 'unknown test sned')")
    with pytest.raises(helper.HelperError, match="verbs driver: config: unknown test sned") as err:
        helper.result(out, Count, "verbs driver")
    assert err.value.kind == "config"
    assert helper.result_or_none(out, Count) is None
    with pytest.raises(LatlabError, match=r"(?s)publisher printed no result: READY.Traceback"):
        helper.result("READY\nTraceback (most recent call last): boom", Count, "publisher")
    with pytest.raises(LatlabError, match="has not said READY"):
        helper.ready_fields("starting")


def test_a_result_cut_by_a_kill_is_no_result():
    assert helper.results('RESULT {"status": "ok"\n', Count) == []


def test_a_result_the_parent_does_not_know_is_refused_naming_the_field():
    with pytest.raises(LatlabError, match="trader gave a result latlab does not know: sent: Extra inputs"):
        helper.result('RESULT {"status": "ok", "sent": 3}', Count, "trader")
    with pytest.raises(LatlabError, match="n: Input should be a valid integer"):
        helper.result('RESULT {"status": "ok", "n": "many"}', Count)


def test_the_parent_refuses_a_typo_before_any_process_starts():
    with pytest.raises(ValidationError, match="busy_pol_us"):
        EngineConfig(role="client", proto="udp", host="10.0.0.2", port=1, busy_pol_us=50)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="proto"):
        EngineConfig(role="client", proto="sctp", host="10.0.0.2", port=1)  # type: ignore[arg-type]


def test_a_config_survives_the_command_line_both_ways(tmp_path):
    cfg = Probe(role="server", port=0, busy=True, rate=2.5, out=tmp_path / "x.npz", users={"T1": "pw"})
    assert Probe.from_argv(cfg.argv()) == cfg
    # a person at a shell: one flag per scalar field; flags win over the JSON
    by_hand = Probe.from_argv(["--role", "client", "--port", "7", "--busy", "--rate", "1e3", "--cpu", "1",
                               "--out", "s.npz"])
    assert by_hand == Probe(role="client", port=7, busy=True, rate=1000.0, cpu=1, out=Path("s.npz"))
    assert Probe.from_argv([*cfg.argv(), "--no-busy", "--port", "9"]) == cfg.model_copy(update={"busy": False,
                                                                                               "port": 9})
    path = tmp_path / "probe.json"
    path.write_text(cfg.model_dump_json())
    assert Probe.from_argv(["--config", str(path)]) == cfg


@pytest.mark.parametrize(("argv", "named"), [
    (["--config-json", '{"role": "server", "port": 1, "prot": "udp"}'], "prot: Extra inputs are not permitted"),
    (["--role", "server", "--port", "70000"], "port: Input should be less than or equal to 65535"),
    (["--role", "sever", "--port", "1"], "invalid choice: 'sever'"),
    (["--port", "1"], "role: Field required"),
    (["--config-json", "{not json"], "config: Expecting property name"),
])
def test_the_helper_refuses_a_bad_config_naming_the_key(argv, named, capsys):
    with pytest.raises(SystemExit) as stop:
        Probe.from_argv(argv, "probe")
    assert stop.value.code == 2
    assert named in capsys.readouterr().err


def test_a_real_helper_refuses_a_typo_and_starts_nothing():
    out = subprocess.run([sys.executable, "-m", "toe_bench.engine", "--config-json",
                          '{"role": "server", "proto": "udp", "host": "127.0.0.1", "port": 0, "busy_pol_us": 5}'],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "busy_pol_us: Extra inputs are not permitted" in out.stderr
    assert helper.READY not in out.stdout
