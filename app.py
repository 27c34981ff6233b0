"""kefu — customer-service management. ``create_app`` is the only way to build the web app."""
from __future__ import annotations

from flask import Flask

from kefu.core.config import load_config


def create_app(config: dict | None = None) -> Flask:
    """Build the Flask app: config, MongoDB, Redis, i18n, login, admin, API, CLI.

    ``config`` overrides environment variables (tests pass their servers here).
    Raises ``kefu.core.config.ConfigError`` with one readable line when the settings
    cannot work (e.g. MongoDB unreachable within ``MONGODB_TIMEOUT_MS``).
    """
    from redis import Redis

    from admin_views import init_admin
    from jobs import signals
    from kefu.calendar import workcalendar
    from kefu.core import db
    from kefu.core.crypto import FieldCipher
    from kefu.rules import sla
    from kefu.runtime import storage
    from kefu.runtime.cli import kefu_cli
    from web import init_web

    app = Flask(__name__)
    app.config.update(load_config(config))
    db.connect(app.config["MONGODB_URI"], app.config["MONGODB_DB"], app.config["MONGODB_TIMEOUT_MS"])
    storage.ensure_collections()
    app.extensions["kefu_cipher"] = FieldCipher.from_config(app.config)
    app.extensions["kefu_redis"] = Redis.from_url(
        app.config["REDIS_URL"], socket_timeout=2, socket_connect_timeout=2,
    )
    # A calendar edit moves the deadlines of every record whose clocks still run.
    workcalendar.on_change(sla.recompute_live)
    signals.connect()
    init_web(app)
    init_admin(app)
    app.cli.add_command(kefu_cli)
    return app
