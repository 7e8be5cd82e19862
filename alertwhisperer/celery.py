import logging
import os

from celery import Celery
from kombu.transport import redis as kombu_redis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alertwhisperer.settings")

logger = logging.getLogger(__name__)


class _QoS(kombu_redis.QoS):
    """When Redis goes away, the worker's consumer collects its broker connection (which
    detaches the transport from it) and then closes it; closing the channel restores its
    unacknowledged messages, which needs a new client, built from the detached connection:
    ``AttributeError: 'NoneType' object has no attribute 'hostname'`` in kombu 5.7, which
    the worker treats as unrecoverable, and it exits. Without a connection there is nothing
    to restore them through: they stay in Redis's unacked set, from which the next consumer
    restores them once the visibility timeout has passed."""

    def restore_unacked(self, client=None):
        if client is None and self.channel.connection.client is None:
            logger.warning(
                "Broker connection lost with %d unacknowledged message(s); they are left to "
                "the visibility timeout.",
                len(self._delivered),
            )
            self._delivered.clear()
            return
        super().restore_unacked(client)


class _Channel(kombu_redis.Channel):
    QoS = _QoS


class RedisTransport(kombu_redis.Transport):
    """kombu's Redis transport with the fix above (settings ``CELERY_BROKER_TRANSPORT``)."""

    Channel = _Channel


app = Celery("alertwhisperer")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
