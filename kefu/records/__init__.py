"""Records of every type: type definitions (``types``, changed through ``definitions``) and their sections'
registry (``sections``), field types (``fields``), the one write path (``write``, with ``engine_state`` for the
keys the rules keep), values in and out (``values``), the timeline (events and audit), queries, search,
attachments (with ``file_types``) and migrations of stored values."""
