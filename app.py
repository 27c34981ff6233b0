"""kefu — customer-service management. ``create_app`` is the only way to build the web app."""
from __future__ import annotations

from flask import Flask
from redis import Redis

from admin_views import init_admin
from jobs import signals
from jobs.calendar import queue_recompute
from kefu import knowledge
from kefu.calendar import workcalendar
from kefu.core import db
from kefu.core.config import Settings
from kefu.core.crypto import FieldCipher
from kefu.rules import register_sections
from kefu.runtime import storage
from kefu.runtime.cli import kefu_cli
from kefu.runtime.keys import check_data_key
from web import init_web


def create_app(config: dict | None = None) -> Flask:
    """Build the Flask app: config, MongoDB, Redis, i18n, login, admin, API, CLI.

    The settings are read once, here (``kefu.core.config.Settings``): ``config`` overrides
    environment variables (tests pass their servers here).
    Raises ``kefu.core.config.ConfigError`` with one readable line when the settings
    cannot work (e.g. MongoDB unreachable within ``MONGODB_TIMEOUT_MS``).
    """
    settings = Settings.load(config)
    app = Flask(__name__)
    app.config.update(settings.flask_config())
    db.connect(settings.mongodb_uri, settings.mongodb_db, settings.mongodb_timeout_ms)
    cipher = FieldCipher.from_config(app.config)
    check_data_key(cipher)  # before anything writes: a wrong KEFU_DATA_KEY must leave the database untouched
    storage.ensure_collections()
    app.extensions["kefu_cipher"] = cipher
    app.extensions["kefu_redis"] = Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    # A calendar edit moves the deadlines of every record whose clocks still run: a worker recomputes them.
    workcalendar.on_change(queue_recompute)
    signals.connect()
    register_sections()
    knowledge.setup()  # the knowledge base's section, after the engine's own
    init_web(app)
    init_admin(app)
    app.cli.add_command(kefu_cli)
    return app
