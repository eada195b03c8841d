"""Writing artefacts so that a killed process never leaves one that looks finished but is not.

A file is written beside its destination and renamed over it (`os.replace` is atomic on one filesystem); a
folder (a CLIP export, a dataset) is built under a temporary name and swapped in whole.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable


def degla_cache_dir(*parts: str) -> str:
    """degla's cache folder (`$DEGLA_CACHE`, else `~/.cache/degla`, read when called) joined with `parts`: the
    degla.json Arrow tables (`datasets`), the evaluation's features (`eval_features`), the world's data (`world`)."""
    root = os.environ.get("DEGLA_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "degla")
    return os.path.join(root, *parts)


def _temporary_name(path: str, suffix: str) -> str:
    """A hidden name beside `path`, unique to this call (process id + random), so that several processes writing
    the same artefact never share a temporary file."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{os.getpid()}.{uuid.uuid4().hex[:12]}{suffix}")


def write_file_atomic(path: str | os.PathLike, write: Callable[[str], object]) -> None:
    """Call `write(tmp)` on a temporary path unique to this call in `path`'s folder (so that several processes
    writing the same file never share one), then rename it over `path`."""
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = _temporary_name(path, ".tmp")
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # the umask applies, as to any new file
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder and an atomic rename."""
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    write_file_atomic(path, write)


def write_json_atomic(path: str | os.PathLike, data, **kwargs) -> None:
    write_text_atomic(path, json.dumps(data, **{"indent": 2, **kwargs}))


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike):
    """Yield a temporary folder beside `path`; on success it replaces `path` (an old `path` is removed only after
    the new one is in place). On an error the temporary folder is deleted and `path` is left as it was."""
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = _temporary_name(path, ".tmp")
    os.mkdir(tmp)  # mode 0o777 minus the umask, as a folder the user creates
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if os.path.exists(path):
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".old", dir=parent)
        os.rename(path, os.path.join(old, "previous"))
    os.rename(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
