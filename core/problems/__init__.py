"""Problems the engine optimises: models written as in PyTorch (model.py) and their data (data.py).

Both raise errors from `core.errors.PlaygroundError`, one line each, meant for the user.
"""
