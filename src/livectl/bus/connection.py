"""The one place a process makes its Redis client: a single server or a Redis Cluster."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.cluster import ClusterPipeline

from livectl.config import Settings


class _WaitingCluster(RedisCluster):
    """A cluster client that waits for a connection when all are busy, as the blocking pool
    does for a single server: redis-py's cluster client raises MaxConnectionsError instead, so
    a burst of consoles connecting at once would be answered 503. One bound over the whole
    client: a command or pipeline holds at most one connection per node, so no node can
    have more in use than the bound."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.free_connections = asyncio.Semaphore(kwargs["max_connections"])

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.free_connections:
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # which refuses it
        # redis-py's typing marks an attribute of a base abstract that no pipeline sets; its
        # own pipeline() makes the same object.
        return _WaitingPipeline(self, transaction)  # type: ignore[abstract]


class _WaitingPipeline(ClusterPipeline):
    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        client = cast(_WaitingCluster, self.cluster_client)
        async with client.free_connections:
            return await super().execute(raise_on_error, allow_redirections)


def open_redis(settings: Settings, url: str) -> Redis:
    """A client for ``url``; with ``LIVECTL_REDIS_CLUSTER=true`` a cluster client seeded from
    it (any one node will do: the client learns the others and the slot map from it)."""
    if settings.redis_cluster:
        cluster = _WaitingCluster.from_url(
            url,
            max_connections=settings.redis_max_connections,
            socket_keepalive=True,
        )
        # RedisCluster has the command API of Redis (the same mixins) but no common base
        # class; the code that routes a command by its keys' slot lives in the client, so
        # callers stay unchanged. Single-key commands and one room's keys (one hash tag, one
        # slot) are all livectl sends, which is what a cluster requires.
        return cast(Redis, cluster)
    return Redis.from_pool(
        BlockingConnectionPool.from_url(
            url,
            max_connections=settings.redis_max_connections,
            timeout=settings.redis_pool_timeout_s,
            health_check_interval=30,
            socket_keepalive=True,
        )
    )
