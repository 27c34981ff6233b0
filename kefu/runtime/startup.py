"""What an entry point checks before it starts anything — the launcher (``./kefu.sh up``) and gunicorn's master
(``gunicorn.conf.py``): the settings, MongoDB answering, ``KEFU_DATA_KEY`` reading this database and, for the
launcher, Redis answering. Each failure is a ``ConfigError`` of one line (``create_app`` raises the same ones in
every process that builds the app; ``flask kefu …`` prints them as ``[kefu] cannot start: …``)."""
from __future__ import annotations

from collections.abc import Mapping

from redis import Redis
from redis.exceptions import RedisError

from kefu.core import db
from kefu.core.config import ConfigError, Settings, uri_hosts
from kefu.core.crypto import FieldCipher
from kefu.runtime.keys import check_data_key

REDIS_TIMEOUT_SECONDS = 2


def check_start(overrides: Mapping | None = None, redis: bool = True) -> Settings:
    """The settings (``Settings.load(overrides)``) once MongoDB answered, the data key reads this database and,
    with ``redis``, Redis answered; ``ConfigError`` otherwise. Leaves no MongoDB client open: safe before a fork.
    Without ``redis`` for the web app, which works while Redis is down (the workers catch up)."""
    settings = Settings.load(overrides)
    db.connect(settings.mongodb_uri, settings.mongodb_db, settings.mongodb_timeout_ms)
    try:
        check_data_key(FieldCipher.from_config(settings.flask_config()))
    finally:
        db.disconnect()
    if redis:
        check_redis(settings.redis_url)
    return settings


def check_redis(url: str) -> None:
    """``ConfigError`` naming the host unless the Redis at ``url`` answers within ``REDIS_TIMEOUT_SECONDS``."""
    client = Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS)
    try:
        client.ping()
    except RedisError as exc:
        raise ConfigError(f"Redis at {uri_hosts(url)} did not answer ({type(exc).__name__}: {exc}); check REDIS_URL "
                          "and that the server is running") from None
    finally:
        client.close()
