"""An SMTP server on loopback that keeps what it receives: the far end of email delivery in tests
and in `scripts/dev`, with the TLS, AUTH and failures of a real relay."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import signal
import ssl
import sys
import threading
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlencode

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from sandbox.redis_server import free_port
from sandbox.service import Service

TlsMode = Literal["off", "starttls", "implicit"]
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Received:
    """One accepted message: its envelope, the message itself, and how the session was secured."""

    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage
    tls: bool
    username: str | None


@dataclass
class Fault:
    """A reply the sink gives instead of accepting; `remaining` None means every time."""

    code: int
    text: str
    remaining: int | None

    def take(self) -> str | None:
        """The reply to give now, or None once this fault is used up."""
        if self.remaining == 0:
            return None
        if self.remaining is not None:
            self.remaining -= 1
        return f"{self.code} {self.text}"


class Server(SMTP):
    """aiosmtpd's server, noting each AUTH command: tests prove none was sent in the clear."""

    async def smtp_AUTH(self, arg: str) -> None:
        self.event_handler.note_auth((arg or "").partition(" ")[0].upper())
        await super().smtp_AUTH(arg)


class SinkController(Controller):
    """aiosmtpd's threaded controller, serving with `Server`."""

    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            # SmtpSink asks for it knowingly: on smtps, or to play a careless server.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return Server(self.handler, **self.SMTP_kwargs)


class SmtpSink(Service):
    """Runs an SMTP server on a free loopback port while the `with` block lasts.

    Messages are kept in `received` and, given a `folder`, written there as .eml files. `tls`
    is "off", "starttls" (offered, then required) or "implicit" (smtps), with `context` as the
    server's certificate. `username` and `password` require AUTH, offered only over TLS unless
    `insecure_auth` plays a server that takes passwords in the clear (as one whose STARTTLS an
    attacker stripped would), to prove that the client never sends them.
    """

    def __init__(
        self,
        folder: Path | None = None,
        *,
        tls: TlsMode = "off",
        context: ssl.SSLContext | None = None,
        username: str | None = None,
        password: str | None = None,
        insecure_auth: bool = False,
        port: int | None = None,
    ) -> None:
        if (tls == "off") != (context is None):
            raise ValueError("a TLS context is needed for tls='starttls' or 'implicit', only then")
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        if username is not None and tls == "off" and not insecure_auth:
            raise ValueError(
                "AUTH is offered only after TLS: use tls='starttls' or 'implicit', "
                "or insecure_auth=True for a server that takes passwords in the clear"
            )
        self.folder = folder
        self.tls = tls
        self.username = username
        self.password = password
        self.port = port or free_port()
        self.lock = threading.Lock()
        self.accepted: list[Received] = []
        self.auth_attempts: list[str] = []
        self.recipient_faults: dict[str, Fault] = {}
        self.data_fault: Fault | None = None
        self.held: list[float] = []
        options: dict[str, Any] = {}
        if tls == "starttls":
            options.update(tls_context=context, require_starttls=True)
        if username is not None:
            options.update(authenticator=self.authenticate, auth_required=True)
        # aiosmtpd counts only STARTTLS as TLS and would never offer AUTH on smtps
        # (aio-libs/aiosmtpd#281), although there the whole connection is TLS.
        options.update(auth_require_tls=not (tls == "implicit" or insecure_auth))
        self.controller = SinkController(
            self,
            hostname=HOST,
            port=self.port,
            ssl_context=context if tls == "implicit" else None,
            server_hostname="smtp-sink.localhost",  # not socket.getfqdn(): no DNS lookups
            **options,
        )

    def start(self) -> SmtpSink:
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def url(self, cafile: Path | None = None) -> str:
        """What SMTP_URL should be to deliver here, trusting `cafile` for TLS."""
        scheme = "smtps" if self.tls == "implicit" else "smtp"
        login = ""
        if self.username is not None and self.password is not None:
            login = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}@"
        query = {"tls": "off"} if self.tls == "off" else {}
        if cafile is not None:
            query["cafile"] = str(cafile)
        return f"{scheme}://{login}{HOST}:{self.port}" + (f"?{urlencode(query)}" if query else "")

    @property
    def received(self) -> list[Received]:
        """The messages accepted so far, oldest first."""
        with self.lock:
            return list(self.accepted)

    @property
    def auth_commands(self) -> list[str]:
        """The mechanism of every AUTH command sent, accepted or not, TLS or not."""
        with self.lock:
            return list(self.auth_attempts)

    def fail_recipient(
        self,
        address: str,
        code: int = 550,
        text: str = "5.1.1 No such user",
        times: int | None = None,
    ) -> None:
        """Answer RCPT TO `address` with `code text`, `times` times, or always when None."""
        with self.lock:
            self.recipient_faults[address.lower()] = Fault(check_code(code), text, times)

    def fail_data(
        self, times: int = 1, code: int = 451, text: str = "4.3.0 Try again later"
    ) -> None:
        """Answer the next `times` DATA commands with `code text` instead of accepting."""
        with self.lock:
            self.data_fault = Fault(check_code(code), text, times)

    def hold_answer(self, seconds: float, times: int = 1) -> None:
        """Keep the next `times` accepted messages, but answer 250 only `seconds` later: the
        window in which a client that dies has delivered without knowing it."""
        with self.lock:
            self.held.extend([seconds] * times)

    def note_auth(self, mechanism: str) -> None:
        with self.lock:
            self.auth_attempts.append(mechanism)

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """aiosmtpd's authenticator: the one configured login, by PLAIN or LOGIN."""
        expected = LoginPassword((self.username or "").encode(), (self.password or "").encode())
        if data != expected:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=self.username)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        with self.lock:
            fault = self.recipient_faults.get(address.lower())
            reply = fault.take() if fault else None
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            reply = self.data_fault.take() if self.data_fault else None
        if reply:
            return reply
        content = envelope.original_content or b""
        transport = server.transport
        received = Received(
            sender=envelope.mail_from or "",
            recipients=tuple(envelope.rcpt_tos),
            message=BytesParser(policy=default).parsebytes(content),
            tls=transport is not None and transport.get_extra_info("ssl_object") is not None,
            username=session.auth_data if session.authenticated else None,
        )
        if self.folder is not None:
            save(self.folder, received.message, content)
        with self.lock:
            self.accepted.append(received)
            hold = self.held.pop(0) if self.held else 0.0
        if hold:
            await asyncio.sleep(hold)
        return "250 OK"


def save(folder: Path, message: EmailMessage, content: bytes) -> None:
    """Write an .eml named by arrival time and Message-ID; a reader never sees half a file."""
    message_id = str(message.get("Message-ID", "")).encode()
    name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{hashlib.sha256(message_id).hexdigest()[:12]}"
    partial = folder / f".{name}.eml.tmp"
    partial.write_bytes(content)
    os.replace(partial, folder / f"{name}.eml")


def check_code(code: int) -> int:
    if not 400 <= code < 600:
        raise ValueError(f"a failure reply needs a 4xx or 5xx code, not {code}")
    return code


def main(argv: list[str] | None = None) -> int:
    """`python -m sandbox.smtp_sink`: serve plain SMTP on loopback until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.smtp_sink", description="Keep the mail sent to it, for development."
    )
    parser.add_argument("--port", type=int, help="TCP port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--folder", type=Path, help="write each message there as an .eml file")
    args = parser.parse_args(argv)
    stop = {signal.SIGINT, signal.SIGTERM}
    # Blocked before the server thread starts, so that it inherits the mask and only
    # `sigwait` below ever sees them.
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    with SmtpSink(args.folder, port=args.port) as sink:
        kept = f"; mail kept in {args.folder}" if args.folder else ""
        print(f"==> SMTP sink at SMTP_URL={sink.url()}{kept}", flush=True)
        signal.sigwait(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
