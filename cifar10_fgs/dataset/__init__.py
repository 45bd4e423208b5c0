"""The published dataset on disk: Arrow ``shards``, the ``manifest`` (``generation.json``), per-split
``stats``, and the ``folder`` (its lock and what may be resumed or replaced)."""
