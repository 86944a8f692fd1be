"""A real X display with OpenGL (Xvfb + Mesa) for the GL tests in this folder.

The main pytest process runs Qt offscreen, and a process cannot change its Qt platform, so GL
tests run their drawing in a subprocess with `gl_env` (DISPLAY set, QT_QPA_PLATFORM=xcb).
Xvfb missing is a failure, not a skip: `make test` and `.ci/run` install it.
"""

import pytest

from tests.gl_display import DisplayError, xvfb_display


@pytest.fixture(scope="module")
def gl_env():
    """The environment of a subprocess that draws with OpenGL on a fresh Xvfb display."""
    try:
        with xvfb_display() as env:
            yield env
    except DisplayError as e:
        pytest.fail(str(e), pytrace=False)
