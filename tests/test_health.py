"""``/healthz`` reports each part; a stopped Redis gives a 503 naming it."""
from __future__ import annotations

from kefu.runtime.embedded import EmbeddedRedis, free_port


def test_health_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"mongo": "ok", "redis": "ok"}


def test_health_503_names_redis_when_it_is_down(app_config, tmp_path):
    from app import create_app

    own_redis = EmbeddedRedis(tmp_path / "redis", free_port(), persistent=False).start()
    app = create_app({**app_config, "REDIS_URL": own_redis.url})
    client = app.test_client()
    assert client.get("/healthz").status_code == 200

    own_redis.stop()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json["mongo"] == "ok"
    assert response.json["redis"].startswith("error")

    # It recovers by itself when Redis is back on the same port.
    restarted = EmbeddedRedis(tmp_path / "redis", own_redis.port, persistent=False).start()
    try:
        assert client.get("/healthz").status_code == 200
    finally:
        restarted.stop()
