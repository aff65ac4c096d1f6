"""The one protocol of latlab's helper processes (ping-pong engine, AF_XDP endpoint, publisher, subscriber,
re-request server, exchange, trader, verbs driver).

A helper prints, on its standard output:

    READY {"port": 40123}                   once it can serve (with what its parent needs: a port, …)
    RESULT {"status": "ok", ...}            what it measured or did, last (a verbs driver: one per test)
    ERROR {"kind": "...", "detail": "..."}  instead of a result, when it could not do its job

Its parent waits for READY (latlab.procs.running(..., ready=READY)), then reads the result with `result()`, which
turns an ERROR line into a HelperError and a missing result into an error naming the helper and its last words.
Anything else a helper prints (logs, warnings) is ignored by the protocol.
"""

from __future__ import annotations

import json
from typing import Any

from latlab.errors import LatlabError

READY, RESULT, ERROR = "READY", "RESULT", "ERROR"


class HelperError(LatlabError):
    """A helper said ERROR: `kind` is its class of failure, `detail` what it said."""

    def __init__(self, who: str, kind: str, detail: str) -> None:
        super().__init__(f"{who}: {kind}: {detail}")
        self.kind, self.detail = kind, detail


def say_ready(**fields: Any) -> None:
    """Tell the parent the helper can serve (with what the parent needs to reach it)."""
    print(READY + (f" {json.dumps(fields)}" if fields else ""), flush=True)


def say_result(result: dict[str, Any]) -> None:
    """The helper's result: one line, last."""
    print(f"{RESULT} {json.dumps(result)}", flush=True)


def say_error(kind: str, detail: str, **more: Any) -> None:
    """The helper could not do its job: why, in one line, instead of a result."""
    print(f"{ERROR} {json.dumps({'kind': kind, 'detail': detail, **more})}", flush=True)


def _lines(text: str, word: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.startswith(word + " "):
            try:
                out.append(json.loads(line[len(word) + 1:]))
            except json.JSONDecodeError:
                continue  # a cut line (the helper was killed mid-write): not a result
    return out


def ready_fields(text: str) -> dict[str, Any]:
    """The fields of the helper's READY line ({} for a bare READY); LatlabError when it has said none."""
    for line in text.splitlines():
        if line == READY:
            return {}
        if line.startswith(READY + " "):
            return json.loads(line[len(READY) + 1:])
    raise LatlabError(f"the helper has not said {READY}: {text.strip()[-300:]}")


def results(text: str, who: str = "helper") -> list[dict[str, Any]]:
    """Every RESULT of the output, in order; the first ERROR raises HelperError."""
    errors = _lines(text, ERROR)
    if errors:
        raise HelperError(who, str(errors[0].get("kind", "error")), str(errors[0].get("detail", "")))
    return _lines(text, RESULT)


def result(text: str, who: str = "helper") -> dict[str, Any]:
    """The helper's (last) RESULT; HelperError when it said ERROR, LatlabError when it said neither."""
    found = results(text, who)
    if not found:
        raise LatlabError(f"{who} printed no result: {text.strip()[-300:]}")
    return found[-1]
