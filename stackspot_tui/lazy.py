"""Package names that load their module on first use (PEP 562): a command that needs none of a
package's heavy parts (httpx, asyncio, the simulator) does not pay for importing them."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Sequence

_MISSING = object()


def exports(package: str, names: Iterable[str], modules: Sequence[str]) -> Callable[[str], object]:
    """A module `__getattr__` for `package`: each of `names` comes from the first of `modules`
    (lightest first) that defines it, imported then, and is kept so the next use is plain."""
    wanted = frozenset(names)
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> object:
        if name in wanted:
            for module in modules:
                value = getattr(importlib.import_module(f"{package}.{module}"), name, _MISSING)
                if value is not _MISSING:
                    namespace[name] = value
                    return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
