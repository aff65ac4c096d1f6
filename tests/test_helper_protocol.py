"""The helper-process protocol: READY with its fields, one RESULT last, or an ERROR the parent raises."""

from __future__ import annotations

import subprocess
import sys

import pytest

from latlab import helper
from latlab.errors import LatlabError


def _speak(code: str) -> str:
    """What a helper written with latlab.helper prints."""
    prog = f"from latlab.helper import say_ready, say_result, say_error\n{code}"
    return subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, check=True).stdout


def test_ready_fields_then_the_last_result_amid_other_output():
    out = _speak("say_ready(port=4242)\nprint('a log line {not json}')\nsay_result({'status': 'ok', 'n': 1})\n"
                 "say_result({'status': 'ok', 'n': 2})")
    assert helper.ready_fields(out) == {"port": 4242}
    assert helper.result(out) == {"status": "ok", "n": 2}
    assert [r["n"] for r in helper.results(out)] == [1, 2]
    assert helper.ready_fields(_speak("say_ready()")) == {}


def test_an_error_is_raised_with_its_kind_and_a_silent_helper_is_named():
    out = _speak("say_ready()\nsay_error('config', 'unknown test sned')")
    with pytest.raises(helper.HelperError, match="verbs driver: config: unknown test sned") as err:
        helper.result(out, "verbs driver")
    assert err.value.kind == "config"
    with pytest.raises(LatlabError, match=r"(?s)publisher printed no result: READY.Traceback"):
        helper.result("READY\nTraceback (most recent call last): boom", "publisher")
    with pytest.raises(LatlabError, match="has not said READY"):
        helper.ready_fields("starting")


def test_a_result_cut_by_a_kill_is_no_result():
    assert helper.results('RESULT {"status": "ok"\n') == []
