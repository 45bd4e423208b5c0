"""Publishing: the dataset ``card`` (README.md and figures), ``upload`` to the hub, ``repo_id`` checks."""
