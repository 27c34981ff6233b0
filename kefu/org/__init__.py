"""The organisation and its people: departments, projects → buildings → units, users, roles, API tokens and the
customer archive (客户档案)."""
