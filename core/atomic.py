"""Atomic file writes: every file the app writes goes through here.

The content is written to a temporary file in the same folder, flushed, then renamed over the
target, so a failure at any point leaves the old file (or no file) exactly as it was, never a
partial or empty one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class AtomicWriteError(OSError):
    """Writing failed; the target was left untouched. `path` is the target."""


# The process's umask, read once: reading it means setting it, and the umask is process-wide
# (a thread creating a file in between would get the wrong mode).
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: str | Path, *, allow_empty: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it goes.

    For writers that want a file name (QImage.save, QSvgGenerator): write to the yielded path.
    Raises OSError (from the writer or the rename); the temporary file is always removed. A writer
    that leaves the file empty counts as a failure unless `allow_empty`.
    """
    path = Path(path)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                    dir=path.parent or ".")
    except OSError as e:  # no such folder, no permission: the error names the target
        raise AtomicWriteError(e.errno, e.strerror or str(e), str(path)) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if not tmp.is_file() or (tmp.stat().st_size == 0 and not allow_empty):
            raise AtomicWriteError(f"nothing was written to {path}")
        # mkstemp makes the file 0600; give it the mode a plain open() would have.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, content: str | bytes | Callable[[Path], None]) -> None:
    """Write text (UTF-8), bytes, or whatever `content(tmp_path)` writes, atomically to `path`.

    Raises OSError with the target's name when it cannot be written.
    """
    with atomic_path(path, allow_empty=not callable(content)) as tmp:
        if isinstance(content, str):
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
        elif isinstance(content, bytes):
            with open(tmp, "wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
        else:
            content(tmp)
