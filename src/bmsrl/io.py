"""File helpers shared by every stage: atomic writes and the package's shipped data files."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from importlib import resources
from pathlib import Path

from bmsrl.errors import UserError


def package_data_file(name: str) -> resources.abc.Traversable:
    """A file shipped in the package's ``bmsrl/data`` folder (``name`` e.g. ``"ocv_table.csv"``)."""
    return resources.files("bmsrl") / "data" / name


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path`` atomically.

    Parent folders are created. If the ``with`` body raises, the temporary file is removed and
    ``path`` is left as it was (absent, or its previous content). The temporary file lives in the
    same folder, so :func:`os.replace` never crosses a file system. An :class:`OSError` while
    writing becomes a :class:`UserError` naming ``path``.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"cannot write {path}: it is a directory")
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        with suppress(OSError):
            tmp.unlink()
