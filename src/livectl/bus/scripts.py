"""Running one Lua script many times in one round trip."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError
from redis.typing import EncodableT, KeyT

ScriptCall = tuple[Sequence[KeyT], Sequence[EncodableT]]  # keys, args


async def run_many(redis: Redis, script: AsyncScript, calls: Sequence[ScriptCall]) -> list[Any]:
    """One pipelined EVALSHA per call; errors come back in the list, not raised.

    redis-py's own pipelines ask SCRIPT EXISTS before every execute, a second round trip on
    the hottest paths (every ingest flush, every relayed batch). Here EVALSHA goes out
    directly, and only calls answered NOSCRIPT (Redis restarted or flushed its scripts) are
    sent again once the script is loaded: a NOSCRIPT call never ran, so resending is safe.
    """
    results = await _evalsha(redis, script.sha, calls)
    missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
    if missing:
        script.sha = await redis.script_load(script.script)
        retried = await _evalsha(redis, script.sha, [calls[i] for i in missing])
        for i, result in zip(missing, retried, strict=True):
            results[i] = result
    return results


async def _evalsha(redis: Redis, sha: str, calls: Sequence[ScriptCall]) -> list[Any]:
    async with redis.pipeline(transaction=False) as pipe:
        for keys, args in calls:
            # Through execute_command: redis-py's cluster pipeline refuses evalsha() by name,
            # yet routes EVALSHA by its keys like any other command.
            pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))


async def queue_script(
    pipe: Pipeline, script: AsyncScript, keys: Sequence[KeyT], args: Sequence[EncodableT]
) -> None:
    """Queue one run of ``script`` on ``pipe``.

    A server's pipeline makes sure its scripts are loaded before it executes. A cluster
    pipeline cannot (nor send EVALSHA by name), so there the body goes out with EVAL: each node
    compiles it once and caches it, and a node that restarted cannot answer NOSCRIPT.
    """
    if isinstance(pipe, ClusterPipeline):
        pipe.execute_command("EVAL", script.script, len(keys), *keys, *args)
    else:
        await script(keys=keys, args=args, client=pipe)
