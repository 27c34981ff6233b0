"""The organisation and its people: departments, projects → buildings → units, users, roles, API tokens and the
customer archive (客户档案); their personal data encrypted at rest (``personal``) and the upgrade that encrypted what
earlier versions kept in clear (``migrations``)."""
