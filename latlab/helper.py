"""The one protocol of latlab's helper processes (ping-pong engine, AF_XDP endpoint, publisher, subscriber,
re-request server, exchange, trader, verbs driver).

A helper is started with a typed config: a `HelperConfig` model that the parent builds (and validates, so a typo
fails before any process starts) and hands over as `config.argv()`; the helper reads it back with
`Model.from_argv()`, which also takes one flag per scalar field for a person at a shell
(`python -m toe_bench.engine --role server --proto udp --host 10.0.0.2 --port 0`).

A helper prints, on its standard output:

    READY {"port": 40123}                   once it can serve (with what its parent needs: a port, …)
    RESULT {"status": "ok", ...}            what it measured or did, last (a verbs driver: one per test)
    ERROR {"kind": "...", "detail": "..."}  instead of a result, when it could not do its job

Its parent waits for READY (latlab.procs.running(..., ready=READY)), then reads the result with `result()` into
the helper's `HelperResult` model; an ERROR line becomes a HelperError and a missing result an error naming the
helper and its last words.
Anything else a helper prints (logs, warnings) is ignored by the protocol.
"""

from __future__ import annotations

import argparse
import json
import types
import typing
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from latlab.errors import LatlabError

READY, RESULT, ERROR = "READY", "RESULT", "ERROR"


class HelperError(LatlabError):
    """A helper said ERROR: `kind` is its class of failure, `detail` what it said."""

    def __init__(self, who: str, kind: str, detail: str) -> None:
        super().__init__(f"{who}: {kind}: {detail}")
        self.kind, self.detail = kind, detail


class HelperConfig(BaseModel):
    """What a helper is started with; subclasses declare the fields, once, for both ends."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def argv(self) -> list[str]:
        """The helper's command-line arguments for this config."""
        return ["--config-json", self.model_dump_json()]

    @classmethod
    def from_argv(cls, argv: list[str] | None = None, prog: str | None = None) -> Self:
        """The config from `--config-json JSON`, `--config FILE.json` or one flag per scalar field (flags win
        over the JSON); an unknown or ill-typed field stops the helper with a message naming it."""
        parser = argparse.ArgumentParser(prog=prog, description=cls.__doc__)
        parser.add_argument("--config-json", help="the whole config as JSON")
        parser.add_argument("--config", type=Path, help="the whole config as a JSON file")
        flagged = []
        for name, info in cls.model_fields.items():
            kind = _flag_kind(info.annotation)
            if kind is None:
                continue
            flag = "--" + name.replace("_", "-")
            if kind is bool:
                parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None,
                                    help=info.description)
            else:
                parser.add_argument(flag, dest=name, default=None, help=info.description,
                                    choices=kind if isinstance(kind, tuple) else None)
            flagged.append(name)
        args = parser.parse_args(argv)
        fields: dict[str, Any] = {}
        try:
            if args.config is not None:
                fields.update(json.loads(args.config.read_text()))
            if args.config_json is not None:
                fields.update(json.loads(args.config_json))
        except (OSError, json.JSONDecodeError) as exc:
            parser.error(f"config: {exc}")
        fields.update({name: getattr(args, name) for name in flagged if getattr(args, name) is not None})
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            parser.error(_validation_message(exc))
            raise  # not reached: parser.error exits


def _flag_kind(annotation: Any) -> Any:
    """bool, a tuple of choices, str (any scalar pydantic parses from text), or None (JSON only)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return _flag_kind(args[0]) if len(args) == 1 else None
    if annotation is bool:
        return bool
    if typing.get_origin(annotation) is Literal:
        return tuple(str(a) for a in args)
    return str if annotation in (int, float, str, Path) else None


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors())


class HelperResult(BaseModel):
    """What a helper hands back; subclasses declare the fields. Unknown fields are refused, on both ends."""

    model_config = ConfigDict(extra="forbid")


R = TypeVar("R", bound=HelperResult)


def say_ready(**fields: Any) -> None:
    """Tell the parent the helper can serve (with what the parent needs to reach it)."""
    print(READY + (f" {json.dumps(fields)}" if fields else ""), flush=True)


def say_result(result: HelperResult) -> None:
    """The helper's result: one line, last."""
    print(f"{RESULT} {result.model_dump_json()}", flush=True)


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


def results(text: str, model: type[R], who: str = "helper") -> list[R]:
    """Every RESULT of the output, in order, as `model`; the first ERROR raises HelperError, a result that does
    not fit the model a LatlabError naming the field."""
    errors = _lines(text, ERROR)
    if errors:
        raise HelperError(who, str(errors[0].get("kind", "error")), str(errors[0].get("detail", "")))
    try:
        return [model.model_validate(found) for found in _lines(text, RESULT)]
    except ValidationError as exc:
        raise LatlabError(f"{who} gave a result latlab does not know: {_validation_message(exc)}") from exc


def result(text: str, model: type[R], who: str = "helper") -> R:
    """The helper's (last) RESULT as `model`; HelperError when it said ERROR, LatlabError when it said neither."""
    found = results(text, model, who)
    if not found:
        raise LatlabError(f"{who} printed no result: {text.strip()[-300:]}")
    return found[-1]


def result_or_none(text: str, model: type[R], who: str = "helper") -> R | None:
    """The helper's RESULT as `model`, or None when it said none (killed, or it said ERROR)."""
    try:
        return result(text, model, who)
    except LatlabError:
        return None
