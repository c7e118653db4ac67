"""The one place a process makes its Redis client: a single server or a Redis Cluster."""

from __future__ import annotations

from typing import cast

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster

from livectl.config import Settings


def open_redis(settings: Settings, url: str) -> Redis:
    """A client for ``url``; with ``LIVECTL_REDIS_CLUSTER=true`` a cluster client seeded from
    it (any one node will do: the client learns the others and the slot map from it)."""
    if settings.redis_cluster:
        cluster = RedisCluster.from_url(
            url,
            # Per node here; a cluster client refuses past it instead of waiting, so the
            # bound must cover every blocking read one node's rooms hold.
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
