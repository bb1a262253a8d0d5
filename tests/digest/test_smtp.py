"""Email transport: real SMTP over loopback, with the TLS, AUTH and refusals of a real relay."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from email.utils import make_msgid
from pathlib import Path

import pytest
import trustme

from jobs.config import SmtpSettings
from jobs.digest.smtp import Mailer
from jobs.errors import PermanentError, RetryableError
from sandbox.redis_server import free_port
from sandbox.smtp_sink import SmtpSink
from tests.conftest import ROOT

SENDER = "digests@example.org"
USER = "digest-bot"
PASSWORD = "pw-hunter2-secret"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def cafile(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*(names or ("127.0.0.1", "localhost"))).configure_cert(context)
    return context


@pytest.fixture
def starttls_sink(ca: trustme.CA) -> Iterator[SmtpSink]:
    context = server_context(ca)
    with SmtpSink(tls="starttls", context=context, username=USER, password=PASSWORD) as sink:
        yield sink


def message(recipient: str, subject: str = "Weekly digest") -> EmailMessage:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = SENDER, recipient, subject
    mail["Message-ID"] = make_msgid(domain="digests.test")
    mail.set_content(f"What happened this week, for {recipient}.")
    return mail


def send(url: str, *recipients: str) -> None:
    with Mailer(SmtpSettings.from_url(url)) as mailer:
        for recipient in recipients:
            mailer.send(message(recipient), recipient, SENDER)


def test_plain_loopback_delivery_lands_in_the_sink_and_its_folder(tmp_path: Path) -> None:
    with SmtpSink(tmp_path / "mail") as sink:
        assert sink.url() == f"smtp://127.0.0.1:{sink.port}?tls=off"
        send(sink.url(), "ann@example.com", "bob@example.com")
    assert [(m.sender, m.recipients) for m in sink.received] == [
        (SENDER, ("ann@example.com",)),
        (SENDER, ("bob@example.com",)),
    ]
    first = sink.received[0]
    assert first.message["Subject"] == "Weekly digest" and not first.tls
    files = sorted((tmp_path / "mail").iterdir())
    assert [f.suffix for f in files] == [".eml", ".eml"]
    saved = BytesParser(policy=default).parsebytes(files[0].read_bytes())
    assert saved["Message-ID"] == first.message["Message-ID"]


def test_one_connection_serves_the_whole_batch(starttls_sink: SmtpSink, cafile: Path) -> None:
    with Mailer(SmtpSettings.from_url(starttls_sink.url(cafile))) as mailer:
        mailer.send(message("ann@example.com"), "ann@example.com", SENDER)
        client = mailer.client
        mailer.send(message("bob@example.com"), "bob@example.com", SENDER)
        assert mailer.client is client
    assert starttls_sink.auth_commands == ["PLAIN"]
    assert len(starttls_sink.received) == 2


def test_starttls_with_a_private_ca_and_auth(starttls_sink: SmtpSink, cafile: Path) -> None:
    url = starttls_sink.url(cafile)
    assert url.startswith(f"smtp://{USER}:{PASSWORD}@127.0.0.1:")
    send(url, "ann@example.com")
    (received,) = starttls_sink.received
    assert received.tls and received.username == USER
    assert received.recipients == ("ann@example.com",)


def test_without_cafile_an_unknown_certificate_is_refused(starttls_sink: SmtpSink) -> None:
    with pytest.raises(PermanentError) as error:
        send(starttls_sink.url(), "ann@example.com")
    assert "certificate" in str(error.value) and "could not be verified" in str(error.value)
    assert "?cafile=" in str(error.value)
    assert starttls_sink.received == [] and starttls_sink.auth_commands == []


def test_a_certificate_for_another_host_is_refused(ca: trustme.CA, cafile: Path) -> None:
    context = server_context(ca, "mail.example.com")
    with SmtpSink(tls="starttls", context=context) as sink, pytest.raises(PermanentError) as e:
        send(sink.url(cafile), "ann@example.com")
    assert "could not be verified" in str(e.value) and "127.0.0.1" in str(e.value)
    assert sink.received == []


def test_a_server_without_starttls_gets_neither_the_login_nor_mail() -> None:
    with SmtpSink(username=USER, password=PASSWORD, insecure_auth=True) as sink:
        url = f"smtp://{USER}:{PASSWORD}@127.0.0.1:{sink.port}"
        with pytest.raises(PermanentError, match="does not offer STARTTLS") as error:
            send(url, "ann@example.com")
    assert sink.auth_commands == [] and sink.received == []
    assert PASSWORD not in str(error.value)


def test_tls_off_on_loopback_may_log_in_in_the_clear() -> None:
    with SmtpSink(username=USER, password=PASSWORD, insecure_auth=True) as sink:
        assert sink.url() == f"smtp://{USER}:{PASSWORD}@127.0.0.1:{sink.port}?tls=off"
        send(sink.url(), "ann@example.com")
    (received,) = sink.received
    assert received.username == USER and not received.tls


def test_implicit_tls(ca: trustme.CA, cafile: Path) -> None:
    context = server_context(ca)
    with SmtpSink(tls="implicit", context=context, username=USER, password=PASSWORD) as sink:
        url = sink.url(cafile)
        assert url.startswith("smtps://")
        send(url, "ann@example.com")
    (received,) = sink.received
    assert received.tls and received.username == USER


def test_refused_recipients_are_sorted_and_the_others_still_delivered(
    starttls_sink: SmtpSink, cafile: Path
) -> None:
    starttls_sink.fail_recipient("busy@example.com", 451, "4.2.1 Mailbox busy, later", times=1)
    starttls_sink.fail_recipient("gone@example.com", 550, "5.1.1 No such user here")
    failures: dict[str, Exception] = {}
    with Mailer(SmtpSettings.from_url(starttls_sink.url(cafile))) as mailer:
        for recipient in ["ann@example.com", "busy@example.com", "gone@example.com", "bob@x.org"]:
            try:
                mailer.send(message(recipient), recipient, SENDER)
            except (RetryableError, PermanentError) as error:
                failures[recipient] = error
        mailer.send(message("busy@example.com"), "busy@example.com", SENDER)  # the retry
    busy, gone = failures.pop("busy@example.com"), failures.pop("gone@example.com")
    assert failures == {}
    assert isinstance(busy, RetryableError) and "451 4.2.1 Mailbox busy, later" in str(busy)
    assert isinstance(gone, PermanentError) and "550 5.1.1 No such user here" in str(gone)
    assert PASSWORD not in str(busy) + str(gone)
    delivered = [m.recipients[0] for m in starttls_sink.received]
    assert delivered == ["ann@example.com", "bob@x.org", "busy@example.com"]


def test_a_data_refusal_is_temporary_until_the_server_takes_it() -> None:
    with SmtpSink() as sink:
        sink.fail_data(times=2, code=451, text="4.3.0 Queue full")
        with Mailer(SmtpSettings.from_url(sink.url())) as mailer:
            for _ in range(2):
                with pytest.raises(RetryableError, match=r"451 4\.3\.0 Queue full"):
                    mailer.send(message("ann@example.com"), "ann@example.com", SENDER)
            mailer.send(message("ann@example.com"), "ann@example.com", SENDER)
    assert len(sink.received) == 1


def test_a_wrong_password_is_permanent_and_never_shown(ca: trustme.CA, cafile: Path) -> None:
    context = server_context(ca)
    sink = SmtpSink(tls="starttls", context=context, username=USER, password="other-pw")
    with sink, pytest.raises(PermanentError) as error:
        send(sink.url(cafile).replace("other-pw", PASSWORD), "ann@example.com")
    assert "refused the login of 'digest-bot': 535" in str(error.value)
    assert PASSWORD not in str(error.value) and sink.received == []
    mailer = Mailer(SmtpSettings.from_url(sink.url(cafile)))
    assert "other-pw" not in repr(mailer) + repr(mailer.settings)


def test_no_server_listening_is_temporary_and_fails_the_batch_at_once() -> None:
    port = free_port()
    with Mailer(SmtpSettings.from_url(f"smtp://127.0.0.1:{port}?tls=off")) as mailer:
        with pytest.raises(RetryableError, match="refused"):
            mailer.send(message("ann@example.com"), "ann@example.com", SENDER)
        with SmtpSink(port=port) as sink, pytest.raises(RetryableError, match="refused"):
            mailer.send(message("bob@example.com"), "bob@example.com", SENDER)
    assert sink.received == []


def test_a_server_that_never_answers_times_out_as_a_temporary_failure() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listens, never greets
        url = f"smtp://127.0.0.1:{silent.getsockname()[1]}?tls=off"
        mailer = Mailer(SmtpSettings.from_url(url), timeout=0.2)
        with mailer, pytest.raises(RetryableError, match="timed out"):
            mailer.send(message("ann@example.com"), "ann@example.com", SENDER)


def test_the_sink_runs_alone_for_the_dev_stack(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "sandbox.smtp_sink", "--port", str(port)]
    command += ["--folder", str(tmp_path)]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            banner = process.stdout.readline()
            url = f"smtp://127.0.0.1:{port}?tls=off"
            assert f"SMTP_URL={url}" in banner
            send(url, "ann@example.com")
        finally:
            process.terminate()
    assert process.returncode == 0
    assert [f.suffix for f in tmp_path.iterdir()] == [".eml"]
