"""``GET /healthz``: 200 when MongoDB and Redis answer, 503 naming the part that does not."""
from __future__ import annotations

import pymongo
from flask import Blueprint, current_app, jsonify
from pymongo.errors import PyMongoError
from redis.exceptions import RedisError

from kefu.core.db import get_database

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    status = {"mongo": "ok", "redis": "ok"}
    try:
        with pymongo.timeout(2):
            get_database().client.admin.command("ping")
    except PyMongoError as exc:
        status["mongo"] = f"error: {type(exc).__name__}"
    try:
        current_app.extensions["kefu_redis"].ping()
    except RedisError as exc:
        status["redis"] = f"error: {type(exc).__name__}"
    healthy = all(value == "ok" for value in status.values())
    return jsonify(status), 200 if healthy else 503
