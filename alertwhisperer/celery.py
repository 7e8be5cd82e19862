import os

import redis
from celery import Celery
from kombu.transport import redis as kombu_redis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alertwhisperer.settings")


class _Channel(kombu_redis.Channel):
    """When Redis goes away, the worker's consumer collects its broker connection, which
    detaches the transport from it (``connection.client`` or the channel's ``connection``
    becomes None), then closes it. Whatever then needs a new Redis client on that channel
    (closing it restores the unacknowledged messages of acks-late tasks; a message arriving
    for a cancelled consumer is requeued) builds one from the detached connection and fails
    with ``AttributeError: 'NoneType' object has no attribute 'hostname'`` (kombu 5.7), which
    the worker takes for an unrecoverable error: it exits. A connection error is what it is,
    and the worker handles it (it reconnects); the unacknowledged messages stay in Redis's
    unacked set, from which a consumer restores them once the visibility timeout passed."""

    def _connparams(self, asynchronous=False):
        if self.connection is None or self.connection.client is None:
            raise redis.ConnectionError("The broker connection was closed.")
        return super()._connparams(asynchronous=asynchronous)


class RedisTransport(kombu_redis.Transport):
    """kombu's Redis transport with the fix above (settings ``CELERY_BROKER_TRANSPORT``)."""

    Channel = _Channel


app = Celery("alertwhisperer")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fixup closes every database connection before and after each task unless
# this is set (it then closes them every 2 × this many tasks): each correlation drain paid
# a new PostgreSQL backend, with cold caches and none of its prepared statements. The
# connections are kept as Django's own settings say instead (CONN_MAX_AGE, health checks:
# apps/ops/receivers.reuse_connections). Read by the fixup under this exact name.
app.conf.CELERY_DB_REUSE_MAX = 1_000_000_000
app.autodiscover_tasks()
