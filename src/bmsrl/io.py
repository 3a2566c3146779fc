"""File helpers shared by every stage: atomic writes, distinct outputs, the package's shipped data files."""

from __future__ import annotations

import glob
import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from importlib import resources
from pathlib import Path

from bmsrl.errors import UserError


def package_data_file(name: str) -> resources.abc.Traversable:
    """A file shipped in the package's ``bmsrl/data`` folder (``name`` e.g. ``"ocv_table.csv"``)."""
    return resources.files("bmsrl") / "data" / name


def file_digest(path: str | os.PathLike | None) -> str | None:
    """SHA-256 of a file's bytes (``None`` for the package's shipped table)."""
    return None if path is None else hashlib.sha256(Path(path).read_bytes()).hexdigest()


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path`` atomically.

    Parent folders are created. If the ``with`` body raises, the temporary file is removed and
    ``path`` is left as it was (absent, or its previous content). The temporary file lives in the
    same folder, so :func:`os.replace` never crosses a file system. An :class:`OSError` while
    writing becomes a :class:`UserError` naming ``path``.
    """
    with atomic_outputs(path) as (tmp,):
        yield tmp


@contextmanager
def atomic_outputs(*paths: str | os.PathLike | None) -> Iterator[list[Path | None]]:
    """Like :func:`atomic_output` for several files that belong together (``None`` entries are skipped).

    The temporary files are moved into place only when the ``with`` body has succeeded. If a move
    fails or is interrupted (Ctrl-C, SIGTERM) half-way, the outputs already moved are removed again,
    so the set is never left half new, half old or missing.
    """
    with ExitStack() as stack:
        tmps = [None if p is None else stack.enter_context(_atomic_tmp(p)) for p in paths]
        yield tmps
        moved: list[Path] = []
        try:
            for path, tmp in zip(paths, tmps):
                if tmp is not None:
                    os.replace(tmp, path)
                    moved.append(Path(path))
        except BaseException:
            for path in moved:
                with suppress(OSError):
                    path.unlink()
            raise


@contextmanager
def _atomic_tmp(path: str | os.PathLike) -> Iterator[Path]:
    """The temporary file of :func:`atomic_output`, removed on exit if it is still there."""
    path = Path(path)
    check_output(path, "cannot write")
    _remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
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


def check_output(path: str | os.PathLike | None, option: str, *, folder: bool = False) -> None:
    """Refuse, before any work, an output ``path`` (given as ``option``) of the wrong kind: a file
    where a folder is wanted (``folder``), a folder where a file is wanted, one below a file, or one
    in a folder where no file can be created (its nearest existing folder is probed)."""
    if path is None:
        return
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise UserError(f"{option} {path} is a file, not a folder")
    if not folder and path.is_dir():
        raise UserError(f"{option} {path} is a directory, not a file")
    for parent in ([path] if folder else []) + list(path.parents):
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{option} {path}: {parent} is a file, not a folder")
            _check_writable_folder(parent, f"{option} {path}")
            break


def _check_writable_folder(folder: Path, what: str) -> None:
    """Refuse ``what`` if no file can be created in ``folder`` (read-only, ``/proc``, no permission):
    a probe file is created and removed at once (``os.access`` says yes to root everywhere)."""
    probe = folder / f".bmsrl-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as exc:
        raise UserError(f"{what}: cannot write in {folder} ({exc.strerror or exc})") from None
    with suppress(OSError):
        probe.unlink()


def check_outputs(outputs: dict[str, object], inputs: dict[str, object] | None = None) -> None:
    """A verb's output files, checked before any work: each one's kind and folder
    (:func:`check_output`), and no collision with each other or with an input (:func:`check_distinct`).
    ``outputs`` / ``inputs`` map the option that named a path to the path (``None``: not given)."""
    for option, path in outputs.items():
        check_output(path, option)
    check_distinct(inputs or {}, outputs)


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
