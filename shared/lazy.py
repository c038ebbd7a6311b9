"""Modules that load on first attribute access.

The API function serves every route, but one request uses one service: loading each service when a route
first touches it keeps the others (their store, domain and models) out of the cold start. The standard
library's ``LazyLoader`` is not safe across threads before Python 3.12 (a second thread can find the module
half run and miss a name: CPython gh-114763), and the local stack serves functions on threads, so a module
here runs its code once, under a lock that every other first access waits on."""

from __future__ import annotations

import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

_LOADING = threading.RLock()
_RUNNING: set[str] = set()  # modules whose code is running now (on the thread holding the lock)


class _LazyModule(ModuleType):
    """Registered under its name; its code runs on the first attribute access, by one thread, while the
    others wait (the running code itself sees its names as they are defined, as any import does)."""

    def __getattribute__(self, attr: str) -> Any:
        with _LOADING:
            if (
                type(self) is _LazyModule
            ):  # not run yet (another thread may have run it while this one waited)
                name = ModuleType.__getattribute__(self, "__name__")
                if name not in _RUNNING:
                    _RUNNING.add(name)
                    try:
                        spec = ModuleType.__getattribute__(self, "__spec__")
                        spec.loader.exec_module(self)
                    finally:
                        _RUNNING.discard(name)
                    object.__setattr__(self, "__class__", ModuleType)
        return ModuleType.__getattribute__(self, attr)


def lazy_module(name: str) -> ModuleType:
    """``name`` as a module whose code runs on first attribute access; an imported module as it is."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    module = importlib.util.module_from_spec(spec)
    module.__class__ = _LazyModule
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module
