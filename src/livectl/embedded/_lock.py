"""An exclusive lock on a data directory, held for as long as the services run."""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

from .errors import DataDirInUseError

logger = logging.getLogger("livectl.embedded")

LOCK_NAME = "livectl.lock"


class DataDirLock:
    """``flock`` on ``<data_dir>/livectl.lock``.

    The kernel drops the lock when the holder dies, so a crashed run never blocks the next one;
    the pid written into the file is only there to make the error message useful.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataDirInUseError(
                f"the data directory {self.path.parent} is in use by another livectl "
                f"(pid {holder}); stop it first or choose another data directory"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        logger.debug("locked %s", self.path)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        # The file itself stays: unlinking a flock file lets two processes lock different inodes.
        os.ftruncate(fd, 0)
        os.close(fd)
        logger.debug("unlocked %s", self.path)
