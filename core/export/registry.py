"""Export formats by name: ``@register("name")`` on a function ``(ExportRequest) -> ExportResult``."""

from __future__ import annotations

from typing import Callable

from core.errors import ExportError

_EXPORTERS: dict[str, Callable] = {}


def register(name: str) -> Callable[[Callable], Callable]:
    def deco(fn: Callable) -> Callable:
        _EXPORTERS[name] = fn
        return fn

    return deco


def formats() -> list[str]:
    return sorted(_EXPORTERS)


def get_exporter(name: str) -> Callable:
    try:
        return _EXPORTERS[name]
    except KeyError:
        raise ExportError(f"unknown export format '{name}': use one of {', '.join(formats())}") from None
