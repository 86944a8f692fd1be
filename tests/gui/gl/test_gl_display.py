"""The virtual display the GL tests draw on: it starts, it goes, and its absence is said."""

from pathlib import Path

import pytest

from tests import gl_display
from tests.gl_display import DisplayError, xvfb_display


def test_a_missing_xvfb_is_an_error_that_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(gl_display.shutil, "which", lambda name: None)
    with pytest.raises(DisplayError, match="make test"), xvfb_display():
        pass


def test_the_display_serves_clients_and_stops_afterwards():
    with xvfb_display() as env:
        assert env["QT_QPA_PLATFORM"] == "xcb" and env["DISPLAY"].startswith(":")
        socket = Path(f"/tmp/.X11-unix/X{env['DISPLAY'][1:]}")
        assert socket.exists()  # a client can connect
    assert not socket.exists()  # the server is gone once the block ends
