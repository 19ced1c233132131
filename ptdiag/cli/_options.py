"""Command-line options derived from the setting declarations in `ptdiag.config.AnalyzeConfig`.

Each analyze knob is declared once (type, default per budget, unit, help); this module turns a declaration into a
Typer option (`--flag`, its type, its help with the defaults), so `analyze` takes every setting and the other
commands reuse the shared ones (sources, format, cache folder) with the same flag, type and words.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from enum import Enum
from functools import cache
from typing import Annotated, Any

import typer

from ptdiag.config import BUDGET_NAMES, SETTINGS, budget_default


def flag(name: str) -> str:
    """The long flag of setting `name`."""
    return "--" + name.replace("_", "-")


def format_value(value: Any, unit: str = "", none: str = "") -> str:
    """A default as `--help` and docs/OPTIONS.md show it: comma lists, on/off, what None means, the unit."""
    if value is None:
        return none
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(format_value(v) for v in value)
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{text} {unit}" if unit and text else text


def default_text(name: str) -> str:
    """The default of setting `name` per budget: '64 px' when every budget agrees, else 'quick: 64 px; standard: …'."""
    meta = SETTINGS[name].metadata
    if name == "budget":  # its own default: the budget that applies when none is named
        return format_value(SETTINGS[name].default)
    shown = {b: format_value(budget_default(name, b), meta["unit"], meta["none"]) for b in BUDGET_NAMES}
    if len(set(shown.values())) == 1:
        return shown["quick"]
    return "; ".join(f"{b}: {text or '-'}" for b, text in shown.items())


def help_text(name: str) -> str:
    """The `--help` line of setting `name`: its words, then its defaults in brackets."""
    meta = SETTINGS[name].metadata
    default = default_text(name)
    return f"{meta['help']} [{default}]" if default else meta["help"]


@cache
def _choice_type(name: str, choices: tuple[str, ...]) -> type[Enum]:
    return Enum(name.title().replace("_", ""), [(c, c) for c in choices], type=str)  # type: ignore[return-value]


def option_type(name: str) -> Any:
    """The annotated Typer type of setting `name` as a flag (None = not given, so budget and config file apply)."""
    f = SETTINGS[name]
    meta, declared = f.metadata, str(f.type)
    decls = [flag(name)]
    if meta["choices"]:
        kind: Any = _choice_type(name, meta["choices"])
    elif declared.startswith("tuple"):
        kind = list[str] if meta["repeatable"] else str
    elif declared.startswith("bool"):
        kind, decls = bool, [f"{flag(name)}/--no-{name.replace('_', '-')}"]
    elif declared.startswith("int"):
        kind = int
    elif declared.startswith("float"):
        kind = float
    else:
        kind = str
    if name in ("train", "shift"):
        return Annotated[kind, typer.Option(*decls, help=help_text(name))]
    return Annotated[kind | None, typer.Option(*decls, help=help_text(name))]


def cli_value(value: Any) -> Any:
    """A parsed option value as a setting value (a choice's string, not its Enum member)."""
    return value.value if isinstance(value, Enum) else value


def with_setting_options(exclude: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """Give a command one keyword option per AnalyzeConfig setting (but `exclude`), collected in its
    ``**settings``; its own parameters come first."""

    def decorate(func: Callable) -> Callable:
        own = [p for p in inspect.signature(func, eval_str=True).parameters.values()
               if p.kind is not inspect.Parameter.VAR_KEYWORD]
        settings = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=option_type(name),
                              default=inspect.Parameter.empty if name in ("train", "shift") else None)
            for name in SETTINGS if name not in exclude
        ]
        own_kw = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        params = settings + own_kw
        func.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        func.__annotations__ = {p.name: p.annotation for p in params}
        return func

    return decorate


def options_markdown() -> str:
    """docs/OPTIONS.md: every analyze setting with its flag, config key, type, defaults per budget and help."""
    lines = [
        "# `ptdiag analyze` options",
        "",
        "Generated from the declarations in `ptdiag/config.py` (`make options` rewrites it; a test fails when it is",
        "stale). Every option is a flag and a key of a TOML/YAML `--config` file (the flag without dashes, dashes or",
        "underscores). Precedence: budget defaults < config file < flags. Comma lists are written `0.25,0.5,1` on the",
        "command line and as lists in a file; a repeatable option is given once per value.",
        "",
        "| flag | config key | type | quick | standard | full | what it does |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, f in SETTINGS.items():
        meta = f.metadata
        shown = [format_value(budget_default(name, b), meta["unit"], meta["none"]) or "—" for b in BUDGET_NAMES]
        kind = "one of " + ", ".join(meta["choices"]) if meta["choices"] else str(f.type).replace("|", "or")
        if meta["repeatable"]:
            kind += " (repeatable)"
        words = meta["help"].replace("|", "\\|")
        cells = [f"`{flag(name)}`", f"`{name}`", kind, *(s.replace("|", "\\|") for s in shown), words]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
