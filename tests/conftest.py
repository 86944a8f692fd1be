import os

# Qt tests run offscreen: no display is needed, in CI or here.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
