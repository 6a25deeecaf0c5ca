"""``archviz bench --reference FILE.py:NAME``: a user's ``nn.Module`` to time beside the spec.

Importing a user's file is command-line work: it edits ``sys.path`` (so that the file's sibling
modules import, as with ``python FILE``) and ``sys.modules``. torch is imported when called.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ArchvizError, did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


class BadReference(ArchvizError):
    """A ``--reference`` that names no file, no object, or not an ``nn.Module``."""


def load_reference(text: str) -> nn.Module:
    """A user's ``nn.Module`` from ``FILE.py:NAME``: a module class (built with no arguments),
    a factory function, or a module instance."""
    from torch import nn

    path, sep, name = text.rpartition(":")
    if not sep or not path or not name.isidentifier():
        raise BadReference(f"--reference: expected FILE.py:NAME (a class or function), got {text!r}")
    file = Path(path)
    if not file.is_file():
        raise BadReference(f"--reference: {path}: no such file")
    mod_name = f"archviz_reference_{abs(hash(str(file.resolve())))}"
    spec = importlib.util.spec_from_file_location(mod_name, file)
    if spec is None or spec.loader is None:
        raise BadReference(f"--reference: {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    folder = str(file.resolve().parent)
    sys.path.insert(0, folder)  # its sibling modules import, as with `python FILE`
    try:
        spec.loader.exec_module(module)
        if not hasattr(module, name):
            found = [n for n in vars(module) if not n.startswith("_")]
            raise BadReference(f"--reference: {path} defines no {name!r} ({did_you_mean(name, found)})")
        obj = getattr(module, name)
        made = obj() if callable(obj) and not isinstance(obj, nn.Module) else obj
    except ArchvizError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's code: report it, no traceback
        raise BadReference(f"--reference: {text}: {type(exc).__name__}: {exc}") from None
    finally:
        sys.path.remove(folder)
    if not isinstance(made, nn.Module):
        raise BadReference(f"--reference: {name} gave {_article(type(made).__name__)},"
                              " not a torch.nn.Module")
    return made


def _article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun
