"""Package namespaces that import a submodule when one of its names is first used (PEP 562), so that a script's
`--help` or an option error imports no model, dataset or tokenizer code."""

from __future__ import annotations

import importlib
import sys


def lazy_exports(package: str, exports: dict[str, str]):
    """The module `__getattr__` of `package`: `exports` maps each public name to the submodule (relative, `.x`)
    that defines it; the name is imported from there on first use and kept in the package's namespace."""

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], package), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
