"""Outputs never clobber what is at the target path (issue 18, item 2): links, FIFOs, devices, modes."""

import os
import pty
import socket
import stat
import threading
from pathlib import Path

import pytest

from hwnas.errors import HwnasError
from hwnas.fileio import atomic_path, check_writable


def _write(path, text):
    check_writable(path)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def test_symlink_stays_a_link_and_its_target_is_replaced(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    _write(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "real.json"]  # no temporary left


def test_dangling_symlink_writes_its_target(tmp_path):
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "later.csv")
    _write(link, "x")
    assert link.is_symlink() and (tmp_path / "later.csv").read_text() == "x"


def test_existing_file_keeps_its_mode_and_a_new_one_gets_the_umask_default(tmp_path):
    f = tmp_path / "report.xml"
    f.write_text("old")
    os.chmod(f, 0o644)
    _write(f, "new")
    assert stat.S_IMODE(f.stat().st_mode) == 0o644 and f.read_text() == "new"
    os.chmod(f, 0o640)
    _write(f, "newer")
    assert stat.S_IMODE(f.stat().st_mode) == 0o640
    old = os.umask(0o027)
    try:
        _write(tmp_path / "fresh.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "fresh.txt").stat().st_mode) == 0o640  # 0666 & ~027, not mkstemp's 0600


def test_fifo_is_written_in_place_never_replaced(tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(Path(fifo).read_text()))
    reader.start()
    _write(fifo, "through the pipe")
    reader.join(timeout=10)
    assert got == ["through the pipe"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_pty_and_a_link_to_it_are_written_directly(tmp_path):
    # only a pty: even the old code could not clobber it (devpts has no room for a temporary), unlike /dev/null
    master, slave = pty.openpty()
    try:
        name = Path(os.ttyname(slave))
        link = tmp_path / "tty"
        link.symlink_to(name)
        _write(name, "to the terminal")
        _write(link, " and through a link")
        got = b""
        while b"link" not in got:
            got += os.read(master, 1024)
        assert b"to the terminal" in got and stat.S_ISCHR(os.stat(name).st_mode) and link.is_symlink()
    finally:
        os.close(master)
        os.close(slave)


def test_directories_sockets_and_block_devices_are_refused(tmp_path):
    with pytest.raises(HwnasError, match="is a directory"):
        check_writable(tmp_path)
    sock_path = tmp_path / "s.sock"
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(sock_path))
        with pytest.raises(HwnasError, match="is a socket"):
            with atomic_path(sock_path):
                pass
    finally:
        s.close()
    blocks = [p for p in Path("/dev").glob("loop*") if stat.S_ISBLK(os.stat(p).st_mode)]
    if blocks:
        with pytest.raises(HwnasError, match="is a block device"):
            check_writable(blocks[0])


def test_failed_block_leaves_the_old_file_and_no_temporary(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("keep")
    with pytest.raises(RuntimeError):
        with atomic_path(f) as tmp:
            Path(tmp).write_text("half")
            raise RuntimeError("boom")
    assert f.read_text() == "keep" and [p.name for p in tmp_path.iterdir()] == ["a.csv"]


def test_stdout_redirected_to_a_file_is_written_not_renamed_over(tmp_path):
    """``--json /dev/stdout > file``: the name stands for the open file (``/proc/self/fd/1``); rename onto it
    and the output lands in a new file while the shell's stays behind. A link in tmp_path stands in for
    /dev/stdout so that no version of the code can touch /dev."""
    import subprocess
    import sys

    out = tmp_path / "captured.txt"
    stdout = tmp_path / "stdout"
    stdout.symlink_to("/proc/self/fd/1")
    code = ("import sys; from pathlib import Path; from hwnas.fileio import atomic_path, check_writable; "
            "print('before', flush=True); p = Path(sys.argv[1]); check_writable(p); cm = atomic_path(p); "
            "t = cm.__enter__(); open(t, 'a').write('json'); cm.__exit__(None, None, None)")
    with open(out, "w") as fh:
        inode = os.fstat(fh.fileno()).st_ino
        subprocess.run([sys.executable, "-c", code, str(stdout)], stdout=fh, check=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert stdout.is_symlink() and out.stat().st_ino == inode and "json" in out.read_text()
