"""The gateway: HTTP and WebSocket only. It validates, stamps and appends; it never computes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from livectl import __version__, metrics
from livectl.auth.endpoints import router as tokens_router
from livectl.config import Settings
from livectl.console.endpoints import router as console_router
from livectl.console.hub import Hub
from livectl.coupons.batcher import ClaimBatcher
from livectl.coupons.claims import CouponScripts
from livectl.coupons.endpoints import router as coupons_router
from livectl.errors import install_error_handlers
from livectl.giveaways.endpoints import router as giveaways_router
from livectl.health import router as health_router
from livectl.ingest.endpoints import router as ingest_router
from livectl.ingest.service import IngestService
from livectl.kit.heap import freeze_startup_heap
from livectl.limits.service import GatewayLimits
from livectl.moderation.endpoints import router as moderation_router
from livectl.openapi import document_errors
from livectl.opinion.endpoints import router as opinion_router
from livectl.ranking.endpoints import router as ranking_router
from livectl.report.endpoints import router as report_router
from livectl.resources import open_resources
from livectl.rooms.endpoints import router as rooms_router
from livectl.rules.endpoints import router as rules_router
from livectl.sockets import LongLivedSocketsFirst
from livectl.stats.endpoints import router as stats_router
from livectl.web.pages import mount_pages

# Net container allocations between two passes of the cyclic collector over its young
# generation (CPython's default: 700). Under one-event frames each pass walked the frames still
# waiting for their flush and moved them on to older generations, whose passes then walked
# every socket's objects: the collector took 17-21% of the gateway's CPU, and 2% at 10,000.
# Its memory cost is the cyclic garbage waiting for a pass, which a connection makes only when
# it closes (about 75 objects): a console's snapshot statement, which made 10 a socket, is
# now built once (opinion.repository).
_YOUNG_CONTAINERS = 10_000


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_resources(settings) as resources:
            app.state.resources = resources
            app.state.ingest = IngestService(resources)
            app.state.hub = Hub(resources.redis)
            app.state.limits = GatewayLimits(resources.redis, settings)
            app.state.claims = ClaimBatcher(
                CouponScripts(resources.redis),
                attempts_per_user_per_s=settings.claims_per_user_per_s,
            )
            freeze_startup_heap(young_containers=_YOUNG_CONTAINERS)
            metrics.time_collector_pauses()
            try:
                yield
            finally:
                await app.state.claims.close()
                await app.state.limits.close()
                await app.state.hub.close()
                await app.state.ingest.appender.close()

    app = FastAPI(
        title="livectl",
        version=__version__,
        summary="Real-time control center (直播中控台) for e-commerce live streams",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    document_errors(app)
    app.add_middleware(LongLivedSocketsFirst)
    for router in (
        health_router,
        tokens_router,
        rooms_router,
        ingest_router,
        console_router,
        stats_router,
        ranking_router,
        coupons_router,
    ):
        app.include_router(router)
    for router in (opinion_router, moderation_router, report_router):
        app.include_router(router)
    app.include_router(rules_router)
    app.include_router(giveaways_router)
    mount_pages(app)
    return app
