"""File helpers shared by every stage: atomic writes, distinct outputs, the package's shipped data files."""

from __future__ import annotations

import glob
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
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"cannot write {path}: {parent} is a file, not a folder")
            break
    _remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        with suppress(OSError):
            tmp.unlink()


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temporary files of ``path`` left by a killed process (its pid is in the name and it no
    longer runs), so a ``kill -9`` during a large write does not leave the file behind for good."""
    try:
        candidates = list(path.parent.glob(f".{glob.escape(path.name)}.*-*.tmp"))
    except OSError:
        return
    for tmp in candidates:
        pid = tmp.name[len(path.name) + 2 :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_exists(int(pid)):
            with suppress(OSError):
                tmp.unlink()


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def check_distinct(inputs: dict[str, object], outputs: dict[str, object]) -> None:
    """Refuse an output that is one of the inputs, or two outputs that are the same file.

    ``inputs`` / ``outputs`` map the option that named a path (``"--out-md"``) to the path (or a list
    of paths). Paths are compared after resolving symlinks and ``..``, so ``x.csv`` and ``./x.csv``
    are the same file. Raises a one-line :class:`UserError` naming both options.
    """

    def flat(named: dict[str, object]) -> list[tuple[str, Path]]:
        out = []
        for option, value in named.items():
            values = value if isinstance(value, (list, tuple)) else [value]
            out += [(option, Path(v)) for v in values if v is not None]
        return out

    seen: dict[Path, tuple[str, Path]] = {}
    for option, path in flat(inputs):
        seen.setdefault(path.resolve(), (option, path))
    inputs_seen = dict(seen)
    for option, path in flat(outputs):
        key = path.resolve()
        if key in seen:
            other, other_path = seen[key]
            what = "would overwrite the input" if key in inputs_seen else "is the same file as"
            raise UserError(f"{option} {path} {what} {other} {other_path}: give a different path")
        seen[key] = (option, path)
