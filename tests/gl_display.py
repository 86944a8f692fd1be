"""A virtual X display with OpenGL (Xvfb + Mesa's software renderer), for the GL tests and the
3-D benchmark: `with xvfb_display() as env:` gives the environment of a subprocess that draws."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

XVFB_SCREEN = "1280x1024x24"
XVFB_START_TIMEOUT_S = 20
XVFB_MISSING = ("Xvfb is not installed, and the 3-D view needs it here: run `make test` (it "
                "installs xvfb and Mesa as root), or `apt-get install xvfb libgl1-mesa-dri`")


class DisplayError(RuntimeError):
    """Xvfb is missing or did not start; the message says which, in one line."""


@contextmanager
def xvfb_display(screen: str = XVFB_SCREEN) -> Iterator[dict[str, str]]:
    """Start Xvfb on a free display; yield os.environ plus DISPLAY, QT_QPA_PLATFORM=xcb and
    Mesa's software rendering; stop the server afterwards."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise DisplayError(XVFB_MISSING)
    # -displayfd: Xvfb picks a free display number itself and writes it to us once it is ready.
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen([xvfb, "-displayfd", str(write_fd), "-screen", "0", screen,
                               "-nolisten", "tcp"], pass_fds=(write_fd,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], XVFB_START_TIMEOUT_S)
        number = os.read(read_fd, 64).decode().strip() if ready else ""
        if not number.isdigit():
            server.kill()
            err = server.communicate(timeout=5)[1].decode(errors="replace").strip()
            why = err.splitlines()[-1] if err else "no display number"
            raise DisplayError(f"Xvfb did not start: {why}")
        env = dict(os.environ)
        env.pop("WAYLAND_DISPLAY", None)
        env.update(DISPLAY=f":{number}", QT_QPA_PLATFORM="xcb", LIBGL_ALWAYS_SOFTWARE="1")
        yield env
    finally:
        os.close(read_fd)
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if server.stderr is not None:
            server.stderr.close()
