"""API routes: the shape of a record-type definition's sections, as JSON Schema (forms are rendered from it)."""
from __future__ import annotations

from flask import jsonify

from kefu.records.sections import sections
from web.api.base import blueprint


@blueprint.get("/v1/types/schema")
def section_schemas():
    """``{"order": [key …], "sections": {key: JSON Schema}}`` for every section a definition may have (workflow,
    sla, levels …); ``order`` is the order the engine runs them, each schema's ``title`` names its section."""
    registered = sections()
    return jsonify({"order": [section.key for section in registered],
                    "sections": {section.key: section.json_schema() for section in registered}})
