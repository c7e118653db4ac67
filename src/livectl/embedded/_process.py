"""Small, typed helpers around ``psutil`` for recognising processes left by a crashed run."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

# psutil ships no type information; it is already installed as a dependency of pgserver.
import psutil  # type: ignore[import-untyped,unused-ignore]

from .errors import EmbeddedServiceError

logger = logging.getLogger("livectl.embedded")


def read_pid(path: Path) -> int | None:
    """The pid on the first line of a pid file, or None if the file is missing or garbled."""
    try:
        first_line = path.read_text().splitlines()[0]
        return int(first_line.strip())
    except (OSError, IndexError, ValueError):
        return None


def is_live_process_in(pid: int, name_prefix: str, cwd: Path) -> bool:
    """Whether ``pid`` is a running (non-zombie) ``name_prefix*`` process working in ``cwd``.

    Both Redis and the PostgreSQL postmaster chdir into their data directory, so the working
    directory tells a leftover server apart from an unrelated process that reused its pid.
    """
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if not str(proc.name()).startswith(name_prefix):
            return False
        return Path(str(proc.cwd())).resolve() == cwd.resolve()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        # It has the right pid and we may not inspect it: assume it is the server rather than
        # risk a second server writing the same files.
        return True


def is_gone(pid: int) -> bool:
    """Whether ``pid`` has exited; a zombie waiting for a (non-reaping) parent counts as gone."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:
        return False


def terminate(pid: int, *, timeout: float) -> None:
    """SIGTERM ``pid`` (not our child), wait up to ``timeout`` seconds, then SIGKILL it."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    except PermissionError as exc:
        raise EmbeddedServiceError(f"not allowed to stop process {pid}; stop it yourself") from exc
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_gone(pid):
            return
        time.sleep(0.05)
    logger.warning("process %d ignored SIGTERM for %.0f s, killing it", pid, timeout)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while not is_gone(pid):
        time.sleep(0.05)


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file, or a note that there is none."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def live_processes_in(name_prefix: str, cwd: Path) -> list[int]:
    """Pids of running ``name_prefix*`` processes whose working directory is ``cwd``."""
    target = cwd.resolve()
    found: list[int] = []
    for proc in psutil.process_iter(["pid", "name", "status"]):
        info = proc.info
        if not str(info.get("name") or "").startswith(name_prefix):
            continue
        if info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        try:
            if Path(str(proc.cwd())).resolve() == target:
                found.append(int(info["pid"]))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found
