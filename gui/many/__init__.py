"""The "Many runs" workspace (issue 9): thousands of runs as one batch, one analysis per tab.

workspace.py (ManyWorkspace, the tabs), common.py (what every tab shares: the race's optimizers,
the result cache, Compute / progress / Cancel, exports), basins_view.py (basins of attraction as
small multiples), basin_layer.py (the last basin map over the race's surface).
"""
