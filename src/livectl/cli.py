"""The ``livectl`` command."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from livectl.auth.tokens import ALL_ROOMS, Role, issue_token, parse_ttl
from livectl.config import Settings

app = typer.Typer(
    help="livectl: real-time control center (直播中控台) for e-commerce live streams.",
    no_args_is_help=True,
    add_completion=False,
)

LogLevel = Annotated[str, typer.Option(help="debug, info, warning or error")]


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )
    for noisy in ("pgserver", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _run_until_signalled(main: asyncio.Event) -> None:
    """Make SIGTERM and SIGINT set ``main`` (graceful stop) inside a running loop."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, main.set)


@app.command()
def up(
    demo: Annotated[
        bool, typer.Option(help="also create a demo room and simulate its traffic")
    ] = False,
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="where embedded Redis/PostgreSQL keep data")
    ] = None,
    api_processes: Annotated[int, typer.Option(min=1, max=64)] = 1,
    worker_processes: Annotated[int, typer.Option(min=1, max=64)] = 1,
    demo_rate: Annotated[float, typer.Option(help="demo events per second")] = 30.0,
    log_level: LogLevel = "info",
) -> None:
    """Everything on one machine: embedded Redis and PostgreSQL when no URL is set,
    migrations, the gateway and the workers. Ctrl-C stops it all."""
    from livectl.supervisor import Stack

    _logging(log_level)
    settings = Settings()
    settings = settings.model_copy(
        update={
            "host": host or settings.host,
            "port": port or settings.port,
            "data_dir": data_dir or settings.data_dir,
        }
    )
    Stack(
        settings,
        api_processes=api_processes,
        worker_processes=worker_processes,
        demo_rate=demo_rate if demo else None,
    ).run()


@app.command()
def api(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    processes: Annotated[int, typer.Option(min=1, max=64, help="gateway processes")] = 1,
    log_level: LogLevel = "info",
) -> None:
    """Run the gateway (HTTP and WebSocket)."""
    from livectl.kit.logs import gateway_log_config
    from livectl.serving import GatewayWebSocketProtocol, serve

    _logging(log_level)
    settings = Settings()
    status = serve(
        {
            "app": "livectl.app:create_app",
            "factory": True,
            "host": host or settings.host,
            "port": port or settings.port,
            "ws": GatewayWebSocketProtocol,
            "ws_max_size": settings.ws_protocol_max_bytes,
            "log_config": gateway_log_config(),
            "log_level": log_level,
            "access_log": False,
            # Graceful shutdown must not wait on consoles that stay connected for hours.
            "timeout_graceful_shutdown": 5,
        },
        processes,
    )
    raise typer.Exit(status)


@app.command()
def worker(
    group: Annotated[
        list[str] | None, typer.Option(help="consumer groups to run (default: all)")
    ] = None,
    except_group: Annotated[
        list[str] | None, typer.Option(help="run every consumer group but these")
    ] = None,
    log_level: LogLevel = "info",
) -> None:
    """Run the workers: one consumer group per concern over every room's event stream."""
    from uvicorn.loops.auto import auto_loop_factory

    from livectl.workers import CONCERNS, run_workers

    _logging(log_level)

    async def main() -> None:
        stop = asyncio.Event()
        _run_until_signalled(stop)
        groups = [g for g in group or list(CONCERNS) if g not in (except_group or ())]
        await run_workers(Settings(), groups, stop)

    # The same event loop the gateway gets from uvicorn: uvloop where it is installed.
    with asyncio.Runner(loop_factory=auto_loop_factory()) as runner:
        runner.run(main())


@app.command()
def migrate(log_level: LogLevel = "info") -> None:
    """Apply the database migrations (LIVECTL_DATABASE_URL)."""
    from livectl.resources import require_urls
    from livectl.store.migrate import upgrade

    _logging(log_level)
    upgrade(require_urls(Settings())[1])


@app.command()
def token(
    role: Annotated[
        Role, typer.Option(help="admin, controller, assistant, host, player or ingest")
    ],
    room: Annotated[
        list[str] | None, typer.Option(help="room id (repeat for more); default '*'")
    ] = None,
    sub: Annotated[str, typer.Option(help="who the token is for")] = "cli",
    ttl: Annotated[str, typer.Option(help="lifetime, e.g. 90m, 12h, 7d")] = "12h",
) -> None:
    """Print a signed token (uses LIVECTL_SECRET or the data directory's secret)."""
    try:
        ttl_s = parse_ttl(ttl)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(
        issue_token(
            Settings().jwt_secret, sub=sub, role=role, rooms=room or [ALL_ROOMS], ttl_s=ttl_s
        )
    )


@app.command()
def tail(
    room: Annotated[str, typer.Argument(help="room id")],
    url: Annotated[str | None, typer.Option(help="livectl base URL")] = None,
    token: Annotated[
        str | None, typer.Option(help="a host-or-above token (default: made locally)")
    ] = None,
    raw: Annotated[bool, typer.Option(help="print the raw envelopes")] = False,
) -> None:
    """Print a room's console stream, readable, reconnecting with `since` if cut."""
    from livectl.console.tail import follow

    settings = Settings()
    credential = token or issue_token(
        settings.jwt_secret, sub="livectl-tail", role=Role.HOST, rooms=[room], ttl_s=86400
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(follow(url or settings.base_url, room, credential, raw=raw))


@app.command()
def replay(
    room: Annotated[str, typer.Argument(help="the recorded room")],
    speed: Annotated[
        float, typer.Option(min=0.1, max=1000, help="how many times faster than live")
    ] = 10.0,
    rules: Annotated[
        Path | None, typer.Option(help="a rule set JSON file (default: the room's own rules)")
    ] = None,
    log_level: LogLevel = "warning",
) -> None:
    """Replay a recorded room's events into a scratch room at N x speed, its rules in dry run,
    and print which rules would fire, when and why (needs running workers: `livectl up`)."""
    from livectl.errors import LivectlError
    from livectl.rules.replay import run_replay

    _logging(log_level)
    try:
        asyncio.run(run_replay(Settings(), room, speed, rules.read_bytes() if rules else None))
    except LivectlError as exc:
        typer.echo(f"{exc.code}: {exc.detail}", err=True)
        raise typer.Exit(1) from exc


@app.command(hidden=True)
def demo(
    url: Annotated[str | None, typer.Option()] = None,
    rate: Annotated[float, typer.Option()] = 30.0,
    log_level: LogLevel = "info",
) -> None:
    """Create the demo room if needed and simulate its viewers until stopped."""
    from livectl.demo.run import run_demo

    _logging(log_level)
    settings = Settings()

    async def main() -> None:
        stop = asyncio.Event()
        _run_until_signalled(stop)
        await run_demo(url or settings.base_url, settings.jwt_secret, rate=rate, stop=stop)

    asyncio.run(main())


def main() -> None:
    # A broken pipe (`livectl tail room | head`) is not an error worth a traceback.
    try:
        app()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
