"""Provenance saved with every artifact: hashes, library versions, sorted JSON written atomically."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from cifar10_fgs.errors import ConfigError

_LIBRARIES = (
    "cifar10-fgs",
    "tensorflow",
    "keras",
    "numpy",
    "datasets",
    "huggingface-hub",
    "pyarrow",
    "pillow",
    "scipy",
)


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, enums, paths and numpy scalars/arrays to plain JSON values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return obj.tolist()
    return obj


def dumps_sorted(obj: Any) -> str:
    return json.dumps(to_jsonable(obj), sort_keys=True, indent=2, allow_nan=False) + "\n"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_dir(path: str | Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, dumps_sorted(obj).encode())


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def splice_marked(path: str | Path, begin: str, end: str, inner: str, what: str) -> bool:
    """Replace the text between the marker lines ``begin`` and ``end`` of ``path`` with ``inner``, atomically.

    False (file untouched) when it already holds ``inner`` there; a one-line ConfigError when the file cannot be
    read or lacks the markers (``what`` names them, e.g. "results").
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path} ({type(exc).__name__}): pass an existing README.md") from None
    head, sep, rest = text.partition(begin)
    _, sep2, tail = rest.partition(end)
    if not sep or not sep2:
        raise ConfigError(f"{path} has no {what} markers: add the lines {begin} and {end}")
    new = f"{head}{begin}{inner}{end}{tail}"
    if new == text:
        return False
    atomic_write_bytes(path, new.encode("utf-8"))
    return True
