"""The demo's SMTP sink: a real SMTP server (aiosmtpd) on loopback that keeps every email.

Is: an aiosmtpd server in the demo's own event loop on a free 127.0.0.1 port; each message
it accepts is kept in memory (for the listing) and written to `DIR/NNNN.eml`, so the emails
can be opened after the demo. Is not: a relay: nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class Mail:
    """One email the sink took: to whom, in which language, its subject and its file."""

    to: str
    language: str
    subject: str
    path: Path


@dataclass
class Mailbox:
    """aiosmtpd's handler: keeps what it is given."""

    directory: Path
    mails: list[Mail] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        message = message_from_bytes(data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        path = self.directory / f"{len(self.mails) + 1:04d}.eml"
        path.write_bytes(data)
        to = parseaddr(str(message["To"]))[1]
        language = str(message["Content-Language"] or "")
        self.mails.append(Mail(to, language, str(message["Subject"]).strip(), path))
        return "250 Message accepted"


class SmtpSink:
    """`async with SmtpSink(dir) as sink`: the server is up on `sink.port` inside."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.mailbox = Mailbox(directory)
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> SmtpSink:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self.mailbox, hostname="asr-demo.localhost"), "127.0.0.1", 0
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
