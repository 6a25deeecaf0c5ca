"""Loading an import target: ``package.module:Name`` or ``path/to/file.py:Name`` → the module it
makes (this runs the target's code: an import runs its module's top-level code)."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from torch import nn

from .mapping import ImportFailed

FILE_PREFIX = "archviz_import_"   # the module name a path/to/file.py target is imported under


def written_as(cls: type) -> str:
    """A class as the user names it: ``mynet.py:Net`` for a class of an imported file (not its
    module name ``archviz_import_mynet``), else ``package.module.Class``."""
    if cls.__module__.startswith(FILE_PREFIX):
        path = getattr(sys.modules.get(cls.__module__), "__file__", None)
        return f"{Path(path).name if path else cls.__module__[len(FILE_PREFIX):] + '.py'}:{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def load_target(target: str) -> nn.Module:
    """``package.module:factory_or_class`` or ``path/to/file.py:Name`` → the module it makes."""
    where, sep, attr = target.rpartition(":")
    if not sep or not where or not attr:
        raise ImportFailed(f"{target}: expected package.module:Name, path/to/file.py:Name or a .onnx file")
    try:
        if where.endswith(".py") or "/" in where or "\\" in where:
            path = Path(where)
            if path.is_dir():
                raise ImportFailed(f"{target}: {where} is a directory, not a Python file")
            if not path.is_file():
                raise ImportFailed(f"{target}: no file {where}")
            spec = importlib.util.spec_from_file_location(f"{FILE_PREFIX}{path.stem}", path)
            assert spec is not None and spec.loader is not None
            mod = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = mod
            spec.loader.exec_module(mod)
        else:
            mod = importlib.import_module(where)
    except ImportFailed:
        raise
    except BaseException as exc:  # noqa: BLE001 - user code may raise anything, even SystemExit
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ImportFailed(f"{target}: cannot import {where}: {type(exc).__name__}: {exc}") from None
    obj = getattr(mod, attr, None)
    if obj is None:
        names = [n for n in dir(mod) if not n.startswith("_")]
        from ..errors import did_you_mean
        hint = did_you_mean(attr, names)
        if len(names) > 40 and not hint.startswith("did you mean"):   # a package: not its whole dir()
            hint = f"{len(names)} public names there, e.g. {', '.join(sorted(names)[:12])} …"
        raise ImportFailed(f"{target}: {where} has no attribute {attr!r}", hint)
    return _instantiate(obj, target)


def _instantiate(obj: Any, target: str) -> nn.Module:
    if isinstance(obj, nn.Module):
        return obj
    if not callable(obj):
        raise ImportFailed(f"{target}: is a {type(obj).__name__}, not a module, class or factory")
    try:
        sig = inspect.signature(obj)
        needed = [p.name for p in sig.parameters.values() if p.default is p.empty
                  and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    except (TypeError, ValueError):
        needed = []
    if needed:
        raise ImportFailed(f"{target}: needs arguments ({', '.join(needed)})",
                           "hint: write a function that takes none and returns the model, and import that")
    try:
        model = obj()
    except Exception as exc:  # noqa: BLE001 - the user's constructor
        raise ImportFailed(f"{target}: calling it failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise ImportFailed(f"{target}: returned a {type(model).__name__}, not a torch.nn.Module")
    return model
