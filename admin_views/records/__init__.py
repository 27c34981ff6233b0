"""Record screens generated from record-type definitions at request time.

Flask-Admin builds forms, columns and filters when a view is constructed and
views cannot be added after the first request. So one view is registered at
``/admin/records/<type_key>/``; for each request it hands the work to a
*screen* — an instance of the same class built from the type's current
definition — cached by (type key, definition version, language). A changed
definition has a new version, so every web process builds the new screen on
its next request; a new type is served without a restart.

The view (``view``) is assembled from one part per concern: the list with its
columns, filters and export (``listing``, ``filters``), saved views
(``saved_views``), the create and edit forms (``forms``) and the details page
with its timeline and actions (``details``); ``rows`` is how a record reads on
every screen, ``guard`` how every screen refuses what the user's roles do not
allow (``kefu.org.access``: 404 out of scope, 403 with the reason otherwise).
"""
from admin_views.records.view import RecordView

__all__ = ["RecordView"]
