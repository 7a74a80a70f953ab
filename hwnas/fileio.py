"""Small file helpers every writer shares: atomic writes, writability checks, sha256, timestamps.

Nothing here imports the rest of hwnas (only ``errors``), so writing a CSV never loads the exporter.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from .errors import HwnasError


def now_iso() -> str:
    """The current UTC time, to the second, ISO 8601."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_text(path: Path, what: str = "file") -> str:
    """A text file's contents as UTF-8 (a leading BOM dropped); anything else is one clear HwnasError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise HwnasError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise HwnasError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise HwnasError(f"{what} {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
                         "save it as UTF-8") from None


def text_lines(path: Path, what: str = "file") -> Iterator[str]:
    """A text file's lines, read as they are needed (a large file is never held whole): UTF-8, a leading BOM
    dropped, line ends kept as ``open(newline="")`` keeps them (what ``csv`` wants). A byte that is not UTF-8
    is one clear HwnasError naming its line, as :func:`read_text` says it."""
    path = Path(path)
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise HwnasError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise HwnasError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    with fh, io.TextIOWrapper(fh, encoding="utf-8-sig", newline="") as text:
        try:
            yield from text
        except UnicodeDecodeError:
            raise HwnasError(_not_utf8(path, what)) from None
        except OSError as exc:
            raise HwnasError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _not_utf8(path: Path, what: str) -> str:
    """read_text's message for the first line of ``path`` that is not UTF-8 (found reading line by line:
    a UTF-8 sequence never contains a newline byte)."""
    with Path(path).open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return (f"{what} {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {number}); "
                        "save it as UTF-8")
    return f"{what} {path} is not UTF-8 text; save it as UTF-8"


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (``/proc/self/status``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)  # elsewhere: the classic set-and-restore
    os.umask(old)
    return old


def _through_dev_or_proc(path: Path) -> bool:
    """True when ``path`` or a link on the way to its target lies in /dev or /proc (``/dev/stdout`` ->
    ``/proc/self/fd/1`` -> an open file): such a name stands for an open file, not a place to rename onto."""
    p = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on link hops
        if p.startswith(("/dev/", "/proc/")):
            return True
        if not os.path.islink(p):
            return False
        p = os.path.normpath(os.path.join(os.path.dirname(p), os.readlink(p)))
    return False


def write_target(path: Path) -> tuple[str, Path]:
    """Where a write to ``path`` really lands, and how to do it without clobbering what is there.

    Returns ``("replace", real)`` for a regular file or a new name (``real`` is the path with symlinks
    resolved, so the link itself survives and its target is replaced atomically) or ``("direct", path)``
    for a FIFO or a character device such as ``/dev/stdout`` or ``/dev/null``, and for a file reached through
    ``/dev/`` or ``/proc/`` (``/dev/stdout`` redirected to a file): written in place, never replaced. A directory, a block device or a socket raises ``HwnasError``.
    """
    path = Path(path)
    try:
        st = os.stat(path)  # follows symlinks
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise HwnasError(f"cannot write {path}: {exc.strerror or exc}") from None
    if st is None:
        return "replace", Path(os.path.realpath(path))  # a new file (or a dangling link's target)
    mode = st.st_mode
    if stat.S_ISREG(mode) and _through_dev_or_proc(path):
        return "direct", path  # /dev/stdout redirected to a file: write to the open file, never rename over it
    if stat.S_ISREG(mode):
        return "replace", Path(os.path.realpath(path))
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        return "direct", path
    what = ("a directory" if stat.S_ISDIR(mode) else "a block device" if stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    raise HwnasError(f"cannot write {path}: it is {what}")


def check_writable(path: Path) -> Path:
    """Fail now, with one line, when ``atomic_path(path)`` could not write; returns ``path``."""
    path = Path(path)
    kind, real = write_target(path)
    if kind == "direct":
        if not os.access(path, os.W_OK):
            raise HwnasError(f"cannot write {path}: permission denied")
        return path
    parent = real.parent if str(real.parent) else Path(".")
    shown = "" if real == path.absolute() or real == path else f" (a link to {real})"
    if not parent.is_dir():
        raise HwnasError(f"cannot write {path}{shown}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise HwnasError(f"cannot write {path}{shown}: directory {parent} is not writable")
    return path


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside ``path``'s real target; rename onto it only if the block succeeds.

    Never clobbers what is at ``path``: a symlink stays a link (its target is replaced atomically), an
    existing file keeps its permission bits (a new one gets the umask default, not mkstemp's 0600), and a
    FIFO or character device (``/dev/stdout``, ``/dev/null``) is yielded as is and written in place, never
    replaced. Directories, block devices and sockets are refused (``HwnasError``).
    """
    kind, real = write_target(Path(path))
    if kind == "direct":
        yield real
        return
    try:
        mode = stat.S_IMODE(os.stat(real).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".part", dir=real.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, real)
    finally:
        if tmp.exists():
            tmp.unlink()
