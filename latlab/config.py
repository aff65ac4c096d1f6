"""Loading and validating configuration files (YAML). Configuration is data; nothing here knows a benchmark."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from latlab.cpu import available_cpus
from latlab.errors import ConfigError


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a dict; a missing or unreadable file is a ConfigError."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise ConfigError(str(p), "file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(str(p), f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(str(p), "top level must be a mapping")
    return data


class Section:
    """Typed access to one mapping of the config, with errors that carry the dotted field name."""

    def __init__(self, data: Mapping[str, Any] | None, path: str) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(path, "must be a mapping")
        self.data = data
        self.path = path

    def field(self, key: str) -> str:
        """The dotted name of a key in this section."""
        return f"{self.path}.{key}" if self.path else key

    def section(self, key: str) -> Section:
        """A nested mapping (empty when absent)."""
        return Section(self.data.get(key), self.field(key))

    def has(self, key: str) -> bool:
        return key in self.data

    def integer(self, key: str, default: int | None = None, *, minimum: int | None = None,
                maximum: int | None = None) -> int:
        """An integer within bounds; bools are not integers here."""
        value = self.data.get(key, default)
        if value is None:
            raise ConfigError(self.field(key), "required")
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self.field(key), f"must be an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise ConfigError(self.field(key), f"must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise ConfigError(self.field(key), f"must be <= {maximum}, got {value}")
        return value

    def number(self, key: str, default: float | None = None, *, minimum: float | None = None) -> float:
        """A real number, at least `minimum`."""
        value = self.data.get(key, default)
        if value is None:
            raise ConfigError(self.field(key), "required")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(self.field(key), f"must be a number, got {value!r}")
        if minimum is not None and value < minimum:
            raise ConfigError(self.field(key), f"must be >= {minimum}, got {value}")
        return float(value)

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None) -> str:
        """One of the given strings."""
        value = self.data.get(key, default)
        if value not in choices:
            raise ConfigError(self.field(key), f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def choices(self, key: str, choices: tuple[str, ...], default: list[str] | None = None) -> list[str]:
        """A non-empty list of strings, each one of `choices`."""
        value = self.data.get(key, default)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise ConfigError(self.field(key), "must be a non-empty list")
        for item in value:
            if item not in choices:
                raise ConfigError(self.field(key), f"unknown {item!r}; known: {', '.join(choices)}")
        return list(value)

    def integers(self, key: str, default: list[int] | None = None, *, minimum: int = 1,
                 maximum: int | None = None) -> list[int]:
        """A non-empty list of integers within bounds (a single integer is a list of one)."""
        value = self.data.get(key, default)
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list) or not value:
            raise ConfigError(self.field(key), "must be an integer or a non-empty list of integers")
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int):
                raise ConfigError(self.field(key), f"must hold integers, got {item!r}")
            if item < minimum:
                raise ConfigError(self.field(key), f"must be >= {minimum}, got {item}")
            if maximum is not None and item > maximum:
                raise ConfigError(self.field(key), f"must be <= {maximum}, got {item}")
        return list(value)

    def boolean(self, key: str, default: bool | None = None) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(self.field(key), f"must be true or false, got {value!r}")
        return value

    def string(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or not value:
            raise ConfigError(self.field(key), f"must be a non-empty string, got {value!r}")
        return value

    def cpu(self, key: str, nth: int) -> int | None:
        """A CPU this process may use (default: the nth available one, wrapping), or None when the config
        says null (leave the processes unpinned)."""
        if key in self.data and self.data[key] is None:
            return None
        cpus = available_cpus()
        cpu = self.integer(key, cpus[nth % len(cpus)], minimum=0)
        if cpu not in cpus:
            raise ConfigError(self.field(key), f"CPU {cpu} is not available here (have {cpus})")
        return cpu

    def interface_address(self, key: str) -> ipaddress.IPv4Interface:
        """An IPv4 address with prefix length, such as 10.77.0.1/24."""
        value = self.string(key)
        try:
            iface = ipaddress.IPv4Interface(value)
        except ValueError as exc:
            raise ConfigError(self.field(key), f"not an IPv4 address/prefix: {exc}") from None
        if "/" not in value:
            raise ConfigError(self.field(key), f"needs a prefix length, such as {value}/24")
        return iface
