"""Sending digest email over SMTP: one connection for a batch, failures sorted for retrying."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from email.message import EmailMessage
from types import TracebackType

from jobs.config import SmtpSettings
from jobs.errors import PermanentError, RetryableError

TIMEOUT = 30.0
# Refusals after which smtplib has already reset the session, so the next message can follow.
SESSION_KEPT = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)


# A message was not sent: `RetryableError` for a 4xx reply or a refused, dropped or timed-out
# connection, `PermanentError` for a 5xx reply or a configuration the server cannot work with.
# The text carries the server's reply, never the password.
MailError = PermanentError | RetryableError


class Mailer:
    """An SMTP session for a batch of messages, opened at the first `send`.

    A session lost on the way is opened again at the next `send`; but once opening one has
    failed, every later `send` of the batch fails the same way at once, rather than waiting
    out another timeout for each recipient.
    """

    def __init__(self, settings: SmtpSettings, timeout: float = TIMEOUT) -> None:
        self.settings = settings
        self.timeout = timeout
        self.client: smtplib.SMTP | None = None
        self.unreachable: MailError | None = None

    def __repr__(self) -> str:
        return f"Mailer({self.where}, connected={self.client is not None})"

    @property
    def where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def __enter__(self) -> Mailer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.client is not None:
            with contextlib.suppress(OSError):
                self.client.quit()
        self.drop()

    def send(self, message: EmailMessage, recipient: str, sender: str) -> None:
        """Deliver `message` to `recipient` only, whatever its headers name, from `sender`."""
        client = self.session()
        try:
            client.send_message(message, from_addr=sender, to_addrs=[recipient])
        except OSError as error:  # smtplib.SMTPException is an OSError, like ssl.SSLError
            # smtplib closes the socket itself on a 421 (service closing) refusal.
            if not isinstance(error, SESSION_KEPT) or not client.sock:
                self.drop()
            raise self.failure(error, recipient) from error

    def session(self) -> smtplib.SMTP:
        """The open session, or a new one."""
        if self.client is not None:
            return self.client
        if self.unreachable is not None:
            raise type(self.unreachable)(*self.unreachable.args)
        try:
            self.client = self.connect()
        except OSError as error:
            self.unreachable = self.failure(error)
            raise self.unreachable from error
        except (PermanentError, RetryableError) as error:
            self.unreachable = error
            raise
        return self.client

    def connect(self) -> smtplib.SMTP:
        """A session secured as SMTP_URL says, and logged in; never credentials in the clear."""
        settings = self.settings
        context = None
        if settings.implicit_tls or settings.starttls:
            context = ssl.create_default_context(cafile=settings.cafile)
        client: smtplib.SMTP
        if settings.implicit_tls:
            client = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=self.timeout, context=context
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=self.timeout)
        try:
            if settings.starttls:
                client.ehlo_or_helo_if_needed()
                if not client.has_extn("starttls"):
                    raise PermanentError(
                        f"{self.where} does not offer STARTTLS, which smtp:// requires: "
                        "nothing was sent, not even the login. Use smtps:// if it speaks "
                        "implicit TLS, or ?tls=off for a sink on loopback"
                    )
                client.starttls(context=context)
            if settings.username and settings.password:
                client.login(settings.username, settings.password)
        except BaseException:
            client.close()
            raise
        return client

    def drop(self) -> None:
        """Forget the session without a goodbye: after an error it may be half dead."""
        if self.client is not None:
            self.client.close()
            self.client = None

    def failure(self, error: OSError, recipient: str | None = None) -> MailError:
        """The error sorted into temporary or permanent, in words fit for a log."""
        if isinstance(error, smtplib.SMTPRecipientsRefused) and recipient in error.recipients:
            code, reply = error.recipients[recipient]
            return self.reply(code, reply, f"{self.where} refused {recipient}")
        if isinstance(error, smtplib.SMTPAuthenticationError):
            what = f"{self.where} refused the login of {self.settings.username!r}"
            return self.reply(error.smtp_code, error.smtp_error, what)
        if isinstance(error, smtplib.SMTPResponseException):
            what = f"{self.where} did not take the message to {recipient}"
            if recipient is None:
                what = f"{self.where} refused the session"
            return self.reply(error.smtp_code, error.smtp_error, what)
        if isinstance(error, ssl.SSLCertVerificationError):
            return self.scrubbed(
                PermanentError,
                f"the TLS certificate of {self.where} could not be verified "
                f"({error.verify_message}). If a private CA signed it, or it is self-signed, "
                "add ?cafile=/path/to/ca.pem to SMTP_URL to trust that certificate",
            )
        if isinstance(error, ssl.SSLError):
            return self.scrubbed(
                PermanentError,
                f"TLS with {self.where} failed ({error.reason or error}): smtp:// means "
                "STARTTLS (usually port 587), smtps:// implicit TLS (usually port 465)",
            )
        if isinstance(error, smtplib.SMTPServerDisconnected) or not isinstance(
            error, smtplib.SMTPException
        ):  # a connection refused, dropped or timed out
            detail = str(error) or type(error).__name__
            return self.scrubbed(RetryableError, f"{self.where}: {detail}")
        return self.scrubbed(PermanentError, f"{self.where}: {error}")  # e.g. no AUTH offered

    def reply(self, code: int, reply: bytes | str, what: str) -> MailError:
        kind = RetryableError if 400 <= code < 500 else PermanentError
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
        return self.scrubbed(kind, f"{what}: {code} {text}")

    def scrubbed(self, kind: type[PermanentError | RetryableError], text: str) -> MailError:
        """The error, with the password cut out should a server ever have echoed it."""
        if self.settings.password:
            text = text.replace(self.settings.password, "***")
        return kind(text)
