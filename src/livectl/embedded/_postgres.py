"""A private PostgreSQL server, run from the binaries in the ``pgserver`` wheel."""

from __future__ import annotations

import atexit
import logging
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from ._process import is_live_process_in, live_processes_in, read_pid, tail, terminate
from .errors import EmbeddedServiceError

logger = logging.getLogger("livectl.embedded")

DEFAULT_PORT = 5432
STOP_TIMEOUT_S = 10.0
ORPHAN_WAIT_S = 5.0


def to_asyncpg_url(uri: str, *, port: int | None = None) -> str:
    """Turn a libpq URI from pgserver into a SQLAlchemy ``postgresql+asyncpg://`` URL.

    ``postgresql://postgres:@/postgres?host=/run/dir`` becomes
    ``postgresql+asyncpg://postgres@/postgres?host=/run/dir``: the empty password is dropped and
    the Unix socket directory stays a ``host`` query parameter, which asyncpg understands.
    ``port`` (pgserver leaves it out of the URI) is added only when it is not the default, so
    the usual URL keeps the plain form above.
    """
    parts = urlsplit(uri)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URI: {uri!r}")
    user = quote(unquote(parts.username or "postgres"), safe="")
    database = quote(unquote(parts.path.lstrip("/")) or "postgres", safe="")
    query = parse_qs(parts.query)
    if "host" in query:
        socket_dir = query["host"][0]
        params = f"host={quote(socket_dir, safe='/')}"
        if "port" in query:
            port = int(query["port"][0])
        if port is not None and port != DEFAULT_PORT:
            params += f"&port={port}"
        return f"postgresql+asyncpg://{user}@/{database}?{params}"
    host = parts.hostname or "localhost"
    port = parts.port or port
    netloc = f"{host}:{port}" if port else host
    return f"postgresql+asyncpg://{user}@{netloc}/{database}"


def _import_pgserver() -> Any:
    # pgserver computes platformdirs' runtime directory at import time, which warns when
    # XDG_RUNTIME_DIR is unset (containers, CI, root shells); the fallback it picks is fine.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver  # noqa: PLC0415
    return pgserver


class PostgresServer:
    """A pgserver-managed PostgreSQL 16 listening only on a Unix socket."""

    def __init__(self, directory: Path, *, persistent: bool) -> None:
        self.directory = directory
        self.persistent = persistent
        self._server: Any = None

    def start(self) -> str:
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        pgserver = _import_pgserver()
        self._clear_stale_state()
        started = time.monotonic()
        try:
            server = pgserver.get_server(
                self.directory, cleanup_mode="stop" if self.persistent else "delete"
            )
        except BaseException as exc:
            # pgserver caches the instance before starting it, so without this a retry in the
            # same process would get the half-started server back.
            broken = pgserver.PostgresServer._instances.pop(self.directory.resolve(), None)
            if broken is not None:
                atexit.unregister(broken._cleanup)
            if isinstance(exc, subprocess.CalledProcessError | subprocess.TimeoutExpired):
                raise EmbeddedServiceError(
                    f"PostgreSQL did not start in {self.directory} ({exc}); "
                    f"log {self.directory / 'log'}:\n{tail(self.directory / 'log')}"
                ) from exc
            raise
        self._server = server
        info = server.get_postmaster_info()
        url = to_asyncpg_url(
            str(server.get_uri()), port=None if info.port is None else int(info.port)
        )
        logger.info(
            "postgres started on %s (pid %d, data %s, %.2f s)",
            url,
            int(info.pid),
            self.directory,
            time.monotonic() - started,
        )
        return url

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        started = time.monotonic()
        pid = int(server.get_pid())
        try:
            server.cleanup()
        finally:
            # pgserver registers its cleanup with atexit on every start; after an explicit
            # stop it would only pile up (one per restart) and run again at exit.
            atexit.unregister(server._cleanup)
        if is_live_process_in(pid, "postgres", self.directory):
            logger.warning("postgres (pid %d) is still running after pg_ctl stop", pid)
            try:
                terminate(pid, timeout=STOP_TIMEOUT_S)
            except EmbeddedServiceError as exc:
                logger.warning("%s", exc)
        logger.info("postgres stopped (pid %d, %.2f s)", pid, time.monotonic() - started)

    def _clear_stale_state(self) -> None:
        """Forget what a crashed run left behind; the caller holds the data-directory lock.

        pgserver stops the server only when the stopping process is the last one in
        ``.handle_pids.json``, so a pid left there by a crash would keep PostgreSQL running
        forever. And pgserver takes any live process with the pid from ``postmaster.pid`` for
        the server, so after a reboot an unrelated process that reused the pid would make it
        hand out a URL nobody answers.
        """
        if not self.directory.exists():
            return
        handles = self.directory / ".handle_pids.json"
        if handles.exists():
            handles.write_text("[]")
        postmaster_pid_file = self.directory / "postmaster.pid"
        pid = read_pid(postmaster_pid_file)
        if pid is None or is_live_process_in(pid, "postgres", self.directory):
            # Either not running, or a postmaster from a crashed run that pgserver will adopt.
            return
        # Backends of a killed postmaster notice its death and exit on their own; PostgreSQL
        # must not start again while any of them still has the data directory open.
        deadline = time.monotonic() + ORPHAN_WAIT_S
        while orphans := live_processes_in("postgres", self.directory):
            if time.monotonic() > deadline:
                raise EmbeddedServiceError(
                    f"postgres processes {orphans} from an earlier run still use "
                    f"{self.directory}; stop them and try again"
                )
            time.sleep(0.1)
        logger.warning("removing stale %s (no PostgreSQL runs as pid %d)", postmaster_pid_file, pid)
        postmaster_pid_file.unlink(missing_ok=True)
