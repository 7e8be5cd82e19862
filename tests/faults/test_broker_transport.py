"""The broker transport of alertwhisperer/celery.py: after Celery collected a lost broker
connection, using its channel fails as a connection error (the worker reconnects), not as
an AttributeError (which made the worker exit)."""

import pytest
import redis
from django.conf import settings
from kombu import Connection
from kombu.transport import redis as kombu_redis

from alertwhisperer.celery import RedisTransport

pytestmark = pytest.mark.fault


def collected_channel(transport):
    connection = Connection(settings.REDIS_URL, transport=transport)
    channel = connection.channel()
    connection.collect()  # what the worker's consumer does when the connection is lost
    return channel


def test_kombu_alone_fails_with_an_attribute_error():
    """When this fails, kombu has fixed it, and RedisTransport can go."""
    with pytest.raises(AttributeError):
        collected_channel(kombu_redis.Transport).qos.restore_by_tag("unacked-tag")


def test_ours_fails_with_a_connection_error_the_worker_recovers_from():
    channel = collected_channel(RedisTransport)
    with pytest.raises(redis.ConnectionError):
        channel.qos.restore_by_tag("unacked-tag")
    assert redis.ConnectionError in RedisTransport.connection_errors
