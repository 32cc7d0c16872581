"""Atomic file output: the ways this package writes a file.

A crash or Ctrl-C never leaves a half-written file that looks complete: data
goes to a hidden temporary file in the destination folder, is flushed to disk,
and only then renamed over the destination (``os.replace`` is atomic on POSIX
and on Windows for files on the same volume).  :func:`publish` does the same
through a staging folder outside the destination (the de-identification's
release, where not even a hidden partial file may appear).  The one exception
is the secret key (:meth:`visceral.deid.identity.SecretKey.load_or_create`),
created exclusively with owner-only permissions.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import IO, Iterator, Optional, Sequence

from visceral.errors import VisceralError
from visceral.types import PathLike

#: Prefix of temporary files; a folder scan may ignore (and clean) them.
TEMP_PREFIX = ".visceral-partial-"


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w", encoding: str = "utf-8", newline: str = "") -> Iterator[IO]:
    """Open a temporary file for writing that replaces ``path`` on success.

    Args:
        path: final destination; its folder must exist.
        mode: ``"w"`` (text) or ``"wb"`` (binary).
        encoding: text encoding (text mode only).
        newline: newline translation for text mode; ``""`` writes ``\\n`` as is.

    On any exception (including ``KeyboardInterrupt``) the temporary file is
    removed and ``path`` is left untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write supports modes 'w' and 'wb', not {mode!r}")
    with _atomic_output_path(Path(path)) as tmp:
        with open(tmp, mode, **({} if mode == "wb" else {"encoding": encoding, "newline": newline})) as handle:
            yield handle


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_write(path, "w", encoding=encoding) as handle:
        handle.write(text)


def check_new_files(paths: Sequence[PathLike], overwrite: bool) -> None:
    """Refuse to replace existing files unless ``overwrite``; make the folders the files go to.

    Raises:
        FileExistsError: naming every file that exists.
    """
    existing = [str(p) for p in paths if Path(p).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"would overwrite {', '.join(existing)}")
    for folder in {Path(p).parent for p in paths}:
        folder.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def exclusive_lock(path: PathLike, what: str) -> Iterator[None]:
    """Hold the lock file ``path`` (created when missing) for the length of a ``with`` block, or refuse
    when another process still holds it after :data:`LOCK_WAIT_S` seconds.  The lock goes with its
    process: a killed run leaves none (once the system has ended it and its children)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + LOCK_WAIT_S
    with open(path, "a+b") as handle:
        while not _try_lock(handle):
            if time.monotonic() >= deadline:
                raise VisceralError(f"{what} is in use by another run ({path} is locked): wait for it to end")
            time.sleep(0.1)
        yield


#: Seconds a run waits for a lock another process holds before it refuses.
LOCK_WAIT_S = 10.0


def _try_lock(handle: IO) -> bool:
    """Lock the open file ``handle`` for this process; False when another process holds it."""
    try:
        if os.name == "nt":
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def publish(data: bytes, staging: PathLike, path: PathLike) -> None:
    """Write ``data`` to the file ``staging`` (outside ``path``'s folder), then rename it to ``path``:
    ``path`` appears complete or not at all; its folder is made when missing."""
    staging, path = Path(staging), Path(path)
    try:
        with open(staging, "wb") as handle:
            handle.write(data)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
        raise


def atomic_output_path(path: PathLike) -> "contextlib.AbstractContextManager[Path]":
    """Give a temporary path for writers that insist on a file name (e.g. SimpleITK).

    Usage::

        with atomic_output_path(dest) as tmp:
            sitk.WriteImage(image, str(tmp))

    The temporary path keeps the destination's full suffix (``.nii.gz``) so that
    format detection by extension works; it is renamed to ``path`` on success.
    """
    return _atomic_output_path(Path(path))


@contextlib.contextmanager
def _atomic_output_path(path: Path) -> Iterator[Path]:
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".gz") else path.suffix
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_dicom(ds: object, target: object, conform: bool = False, implicit_vr: Optional[bool] = None) -> None:
    """Write pydicom data set ``ds`` to ``target`` (a path or a binary buffer) on pydicom 2.4
    (3D Slicer 5.8/5.10) and 3.x alike: ``conform`` writes a standard file (preamble, file meta);
    otherwise the data set is written as read (its transfer syntax and encoding kept).
    ``implicit_vr`` forces a little-endian encoding."""
    import pydicom

    if int(pydicom.__version__.split(".")[0]) >= 3:
        extra = {} if implicit_vr is None else {"implicit_vr": implicit_vr, "little_endian": True}
        pydicom.dcmwrite(target, ds, enforce_file_format=conform, **extra)
    else:
        if implicit_vr is not None:
            ds.is_implicit_VR, ds.is_little_endian = implicit_vr, True  # type: ignore[attr-defined]
        pydicom.dcmwrite(target, ds, write_like_original=not conform)
