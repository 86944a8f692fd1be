"""A real X display with OpenGL (Xvfb + Mesa) for the GL tests in this folder.

The main pytest process runs Qt offscreen, and a process cannot change its Qt platform, so GL
tests run their drawing in a subprocess with `gl_env` (DISPLAY set, QT_QPA_PLATFORM=xcb).
Xvfb missing is a failure, not a skip: `make test` and `.ci/run` install it.
"""

import os
import select
import shutil
import subprocess

import pytest

XVFB_SCREEN = "1280x1024x24"
XVFB_START_TIMEOUT_S = 20


@pytest.fixture(scope="module")
def gl_env():
    """The environment of a subprocess that draws with OpenGL on a fresh Xvfb display."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.fail("Xvfb is not installed, and the 3-D view's tests need it: run `make test` "
                    "(it installs xvfb and Mesa), or `apt-get install xvfb libgl1-mesa-dri`",
                    pytrace=False)
    # -displayfd: Xvfb picks a free display number itself and writes it to us once it is ready.
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen([xvfb, "-displayfd", str(write_fd), "-screen", "0", XVFB_SCREEN,
                               "-nolisten", "tcp"], pass_fds=(write_fd,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], XVFB_START_TIMEOUT_S)
        number = os.read(read_fd, 64).decode().strip() if ready else ""
        if not number.isdigit():
            server.kill()
            err = server.communicate(timeout=5)[1].decode(errors="replace").strip()
            pytest.fail(f"Xvfb did not start: {err.splitlines()[-1] if err else 'no display'}",
                        pytrace=False)
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
