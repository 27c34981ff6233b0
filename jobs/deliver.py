"""Deliveries: hand due ones to workers, send one (email or webhook), record the outcome."""
from __future__ import annotations

from flask import current_app
from redis.exceptions import RedisError
from rq import Queue

from jobs import FAILURE_TTL, NOTIFY_QUEUE, RESULT_TTL, TIMEOUTS, get_queue, retry_policy
from kefu.core.clock import utcnow
from kefu.notify.channels import ChannelError, get_settings, post_webhook, send_email, smtp_settings
from kefu.notify.notifications import (
    MAX_ATTEMPTS, claim, due_deliveries, mark_enqueued, outgoing_payload, record_failure, record_sent,
)


def dispatch(limit: int = 1000) -> int:
    """Queue a ``deliver`` job for every delivery due now (``kefu.notify.notifications.due_deliveries``); return how
    many. Deliveries stay pending in MongoDB when Redis is down and are handed out at a later tick."""
    now = utcnow()
    ids = due_deliveries(now, limit)
    if not ids:
        return 0
    retry = retry_policy(MAX_ATTEMPTS)
    try:
        queue = get_queue(NOTIFY_QUEUE)
        queue.enqueue_many([Queue.prepare_data(deliver, args=(str(i),), retry=retry, timeout=TIMEOUTS[NOTIFY_QUEUE],
                                               result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL) for i in ids])
    except RedisError:
        current_app.logger.warning("could not hand %s deliveries to the workers (Redis unreachable)", len(ids))
        return 0
    mark_enqueued(ids, now)
    return len(ids)


def deliver(delivery_id: str) -> str:
    """Send one delivery, once: claimed first, so a duplicate job or a second worker does nothing.

    A channel error is recorded on the delivery and raised, so rq retries with backoff until
    ``MAX_ATTEMPTS``; then the delivery is ``failed`` (the queue page can retry it).
    """
    delivery = claim(delivery_id, utcnow())
    if delivery is None:
        return "nothing to do (sent, failed or being sent)"
    try:
        if delivery["channel"] == "email":
            smtp = smtp_settings(get_settings(), current_app.extensions["kefu_cipher"])
            answer = send_email(smtp, delivery["target"], delivery["subject"], delivery["body"])
        else:
            answer = post_webhook(delivery["target"], outgoing_payload(delivery))
    except ChannelError as exc:
        record_failure(delivery, str(exc))
        raise
    record_sent(delivery["_id"], answer)
    return f"sent {delivery['channel']} to {delivery['target'] if delivery['channel'] == 'email' else 'webhook'}"
