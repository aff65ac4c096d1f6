"""Configuration files (YAML) and the typed schema every section is declared in. Nothing here knows a benchmark.

Each section is a `Schema` (a frozen pydantic model): every key declared once with its type, default and bounds.
Unknown keys are refused with the nearest known name, numbers must be finite, an integer is never a bool or a
float, and a choice is one of its literals. `validate` turns pydantic's errors into a ConfigError naming the
dotted key.
"""

from __future__ import annotations

import difflib
import ipaddress
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from latlab.cpu import available_cpus
from latlab.errors import ConfigError

S = TypeVar("S", bound="Schema")


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a dict; a missing, unreadable or non-UTF-8 file is a ConfigError."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(p), "file not found") from None
    except IsADirectoryError:
        raise ConfigError(str(p), "is a directory, not a config file") from None
    except PermissionError:
        raise ConfigError(str(p), "permission denied") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(p), f"not UTF-8 text (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(str(p), f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(str(p), "top level must be a mapping")
    return data


class Schema(BaseModel):
    """A config section: unknown keys refused, types strict, numbers finite, the result immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


def _as_tuple(value: Any) -> Any:
    """A YAML list becomes a tuple (sections are immutable); a single item where a list is expected is a
    list of one."""
    if isinstance(value, list):
        return tuple(value)
    return value if value is None or isinstance(value, tuple) else (value,)


def OneOrMore(item: Any) -> Any:
    """A non-empty list of `item` (held as a tuple); a single item is a list of one."""
    return Annotated[tuple[item, ...], BeforeValidator(_as_tuple), Field(min_length=1)]


def AnyNumberOf(item: Any) -> Any:
    """A list of `item`, possibly empty (held as a tuple)."""
    return Annotated[tuple[item, ...], BeforeValidator(_as_tuple)]


Port = Annotated[int, Field(ge=1024, le=65000)]
NonNegative = Annotated[int, Field(ge=0)]
Seconds = Annotated[float, Field(gt=0, le=86_400)]
CpuId = Annotated[int, Field(ge=0, le=4095)]


def validate(schema: type[S], data: Any, path: str) -> S:
    """The section `data` (None: empty) checked against `schema`; the first problem is a ConfigError naming
    its dotted key (an unknown key with the nearest known one)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(path or "(top level)", f"must be a mapping, got {type(data).__name__}")
    try:
        return schema.model_validate(dict(data))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(x) for x in err["loc"] if not isinstance(x, int)]
        field = ".".join([path, *loc] if path else loc) or path
        if err["type"] == "extra_forbidden":
            known = _known_keys(schema, loc[:-1])
            near = difflib.get_close_matches(loc[-1], known, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise ConfigError(field, f"unknown key; {hint}known: {', '.join(known)}") from None
        got = err.get("input")
        message = err["msg"][0].lower() + err["msg"][1:]
        if err["type"] == "literal_error":
            raise ConfigError(field, f"unknown {got!r}; {message}") from None
        shown = f" (got {got!r})" if err["type"] != "missing" and not isinstance(got, dict) else ""
        raise ConfigError(field, f"{message}{shown}") from None


def _known_keys(schema: type[BaseModel], loc: list[str]) -> list[str]:
    """The keys the model at `loc` (inside `schema`) declares."""
    model: Any = schema
    for key in loc:
        info = model.model_fields.get(key) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if info is None:
            return []
        model = _model_in(info.annotation)
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _model_in(annotation: Any) -> Any:
    """The pydantic model an annotation holds (through Optional, Annotated, list and dict), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, Annotated, list, dict):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def cpu_choice(section: Schema, key: str, nth: int, path: str) -> int | None:
    """The CPU a section's `key` names: absent → the nth available CPU (wrapping); null → None (unpinned);
    a number → that CPU, which must be one this process may use."""
    cpus = available_cpus()
    if key not in section.model_fields_set:
        return cpus[nth % len(cpus)]
    cpu = getattr(section, key)
    if cpu is not None and cpu not in cpus:
        raise ConfigError(f"{path}.{key}", f"CPU {cpu} is not available here (have {cpus})")
    return cpu


def interface_address(value: str, field: str) -> ipaddress.IPv4Interface:
    """An IPv4 address with prefix length, such as 10.77.0.1/24."""
    try:
        iface = ipaddress.IPv4Interface(value)
    except ValueError as exc:
        raise ConfigError(field, f"not an IPv4 address/prefix: {exc}") from None
    if "/" not in value:
        raise ConfigError(field, f"needs a prefix length, such as {value}/24")
    return iface


def ipv4_network(value: str, field: str) -> ipaddress.IPv4Network:
    """An IPv4 network such as 10.78.0.0/24."""
    try:
        return ipaddress.IPv4Network(value)
    except ValueError as exc:
        raise ConfigError(field, f"not an IPv4 network: {exc}") from None


def multicast_group(value: str, field: str) -> str:
    """An IPv4 multicast address such as 239.77.0.1."""
    try:
        if not ipaddress.IPv4Address(value).is_multicast:
            raise ConfigError(field, f"{value} is not a multicast address")
    except ValueError as exc:
        raise ConfigError(field, str(exc)) from None
    return value
