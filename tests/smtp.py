"""aiosmtpd on 127.0.0.1 for the tests, its log watched (tests/servers.py).

aiosmtpd runs in a thread of the test process and logs through the `mail.log` logger. While
it runs, that logger also writes to a file of its own, which a failing test shows; the
handler is removed when the server stops, so its thread never writes after the test.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from tests import servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def smtp_server(
    handler: object, log: Path, port: int | None = None, **options: Any
) -> Iterator[Controller]:
    """An SMTP server handing messages to `handler` on 127.0.0.1:`port` (a free one if None),
    logging to `log`, for the block."""
    port = free_port() if port is None else port
    logger = logging.getLogger("mail.log")
    file_handler = logging.FileHandler(log)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(file_handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    try:
        with servers.watching(f"aiosmtpd on 127.0.0.1:{port}", log):
            controller.start()
            try:
                yield controller
            finally:
                controller.stop()
    finally:
        logger.removeHandler(file_handler)
        logger.setLevel(level)
        file_handler.close()
