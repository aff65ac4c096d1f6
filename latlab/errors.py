"""Errors the CLI turns into one clear line and an exit code."""

from __future__ import annotations


class LatlabError(Exception):
    """Base for errors reported to the user without a traceback."""


class ConfigError(LatlabError):
    """A configuration value is wrong; the message names the field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"config: {field}: {problem}")
        self.field = field


class MissingTool(LatlabError):
    """An external program is not installed; names the Debian package and the make target."""

    def __init__(self, tool: str, package: str, target: str = "setup") -> None:
        super().__init__(f"{tool} not installed: apt package {package}, or `make {target}`")
        self.tool = tool
        self.package = package
        self.target = target

    @property
    def short(self) -> str:
        """The text a report row shows in place of figures."""
        return f"{self.tool} not installed: `make {self.target}`"


class LabUnavailable(LatlabError):
    """The two-namespace lab cannot be built here (not root, no netns support)."""
