"""Records of every type: type definitions, field types, the one write path, the timeline (events and audit), queries, search, attachments and migrations of stored values."""
