"""kombu's Redis transport, made safe to close while the broker is down.

What killed a worker when Redis went away (kombu 5.7.0, redis-py 8.1): on a lost
connection Celery's consumer calls `Connection.collect()` and then `close()`. `collect`
closes the task channel, then every channel of the transport in turn
(`Transport.close_connection`), and then clears `transport.client`. When the loss is
noticed while the task channel's BRPOP is in flight (the remote-control channel's
socket reports it first, or the poller's error event), that channel's close reads the
dead BRPOP reply and raises before it closes; `close_connection` would have closed it
again, but stops at the first channel that raises, and the remote-control channel does
raise (it deletes its auto-delete queue over the dead connection). So the task channel
outlives the transport's client. The next use of it (Celery's `connection.close()`
restoring the running task's message, or the task's late ack) builds a Redis pool from
`transport.client.hostname`: `AttributeError: 'NoneType' object has no attribute
'hostname'`, which is not a connection error, so Celery lets it end the worker.

The fix here: close every channel even when one fails (so none outlives the client),
and should a channel still be used after its transport was closed, raise a connection
error, which Celery handles (logs "Couldn't ack" and reconnects) instead of dying.
Selected with `broker_transport` (the broker URL stays `redis://`);
tests/test_worker_alive.py replays the sequence against a real Redis.
"""

from __future__ import annotations

import logging

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis

log = logging.getLogger(__name__)
ALIAS = "tintyperedis"


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict:
        transport = self.connection
        if transport is None or transport.client is None:
            raise kombu_redis.redis.exceptions.ConnectionError(
                "this broker channel belongs to a connection that was closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel

    def close_connection(self, connection) -> None:
        """Close every channel, even when closing one of them fails."""
        self.cycle.close()
        failures = self.connection_errors + self.channel_errors
        for channels in (self._avail_channels, self.channels):
            while channels:
                channel = channels.pop()
                try:
                    channel.close()
                except failures as exc:
                    log.debug("closing a broker channel of a lost connection: %r", exc)


def register() -> str:
    """Make the alias resolve to this transport in this process; returns the alias."""
    TRANSPORT_ALIASES[ALIAS] = "tintype.queue.redis_transport:Transport"
    return ALIAS
