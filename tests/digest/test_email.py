# Digests write ranges with en dashes, so the expected texts do too.
# ruff: noqa: RUF001
from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

from freezegun import freeze_time

from jobs.config import SmtpSettings
from jobs.digest.render.email import email_message
from jobs.digest.smtp import Mailer
from jobs.digest.unsubscribe import token
from sandbox.smtp_sink import SmtpSink
from tests.digest.test_render import NAMES, digest_of, hostile_digest, message

NOW = datetime(2026, 11, 23, 8, 0, 5, tzinfo=UTC)
KEY = b"k" * 32
SIGNED = "token=" + token(KEY, "eng-weekly", "eng@example.com")


def mail(digest: Any = None, **overrides: Any) -> EmailMessage:
    arguments: dict[str, Any] = {
        "schedule": "eng-weekly",
        "sender": "Digests <digests@mail.example.com>",
        "recipient": "eng@example.com",
        "run_id": "eng-weekly:2026-11-23T09:00+01:00",
        "public_url": "https://digests.example.com/",
        "link_key": KEY,
        "now": NOW,
        **overrides,
    }
    return email_message(digest or hostile_digest(), NAMES, **arguments)


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.iter_parts()
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    return text.get_content(), html.get_content()


def test_a_digest_mail_is_text_and_html_alternatives() -> None:
    message = mail()
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Subject"] == "eng-weekly digest: 16–23 Nov 2026"
    assert message["From"] == "Digests <digests@mail.example.com>"
    assert message["To"] == "eng@example.com"
    assert parsedate_to_datetime(message["Date"]) == NOW


def test_the_date_is_the_runs_not_the_clocks() -> None:
    with freeze_time("2031-05-05 12:00:00"):
        message = mail()
    assert parsedate_to_datetime(message["Date"]) == NOW


def test_the_message_id_is_the_same_for_the_same_run_and_recipient() -> None:
    first = mail()["Message-ID"]
    assert first == mail()["Message-ID"]
    assert first.startswith("<") and first.endswith("@mail.example.com>")
    assert mail(recipient="ops@example.com")["Message-ID"] != first
    assert mail(run_id="eng-weekly:2026-11-30T09:00+01:00")["Message-ID"] != first


def test_one_click_unsubscribe_with_a_public_url() -> None:
    message = mail()
    url = f"https://digests.example.com/unsubscribe?schedule=eng-weekly&recipient=eng%40example.com&{SIGNED}"
    assert message["List-Unsubscribe"] == f"<{url}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # On the wire too: one line, not an encoded word that RFC 2369 readers cannot read.
    assert f"List-Unsubscribe: <{url}>\n".encode() in message.as_bytes()
    _, html = parts(message)
    assert f'href="{url.replace("&", "&amp;")}"' in html


def test_unsubscribe_by_mail_without_a_public_url() -> None:
    message = mail(public_url=None)
    assert message["List-Unsubscribe"] == (
        "<mailto:digests@mail.example.com?subject=unsubscribe%20eng-weekly>"
    )
    assert message["List-Unsubscribe-Post"] is None


def test_no_one_click_over_plain_http() -> None:
    message = mail(public_url="http://localhost:8000")
    assert message["List-Unsubscribe"] == (
        f"<http://localhost:8000/unsubscribe?schedule=eng-weekly&recipient=eng%40example.com&{SIGNED}>"
    )
    assert message["List-Unsubscribe-Post"] is None


def test_users_text_is_escaped_in_html_and_plain_in_text() -> None:
    text, html = parts(mail())
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert "Hi @channel &amp; @here" in html and "<!channel>" not in html
    assert 'href="https://evil.example' not in html
    assert "bank (https://evil.example)" in html
    assert "@Bob &lt;!everyone&gt; &amp; co" in html
    assert 'href="https://acme.slack.com/archives/C1/p1790000001000000"' in html
    assert "Hi @channel & @here: pay at bank (https://evil.example) <script>x</script>?" in text
    assert "&amp;" not in text


def test_the_css_is_inlined_for_mail_clients() -> None:
    _, html = parts(mail())
    assert "<style" not in html
    assert '<h1 style="' in html


def test_both_parts_show_the_window_in_the_schedules_zone_and_the_figures() -> None:
    digest = digest_of({"C1": [message(n, "hi") for n in range(3)]})
    for body in parts(mail(digest)):
        assert "Mon 16 Nov 2026 09:00 – Mon 23 Nov 2026 09:00 (Europe/Berlin)" in body
        assert "Messages" in body and "#c1" in body and "Most active" in body


def test_a_digest_mail_says_it_is_automatic_so_no_out_of_office_answers_it() -> None:
    with SmtpSink() as sink, Mailer(SmtpSettings.from_url(sink.url())) as mailer:
        mailer.send(mail(), "eng@example.com", "digests@mail.example.com")
    (received,) = sink.received
    assert received.message["Auto-Submitted"] == "auto-generated"  # RFC 3834
    assert received.message["X-Auto-Response-Suppress"] == "All"  # Exchange and Outlook


def test_the_mail_opens_with_the_summary_then_a_section_per_channel() -> None:
    digest = digest_of(
        {
            "C1": [message(1, "Decision: we'll go with Postgres"), message(2, "hi", "U2")],
            "C2": [message(3, "TODO: write the runbook")],
        }
    )
    text, html = parts(mail(digest))
    for body, heading in ((text, r"^(#c\d): "), (html, r"<h2[^>]*>(#c\d)</h2>")):
        order = [body.index(word) for word in ("Decisions", "Action items", "Channels")]
        assert order == sorted(order)
        sections = [(found.start(), found.group(1)) for found in re.finditer(heading, body, re.M)]
        assert [name for _, name in sections] == ["#c1", "#c2"]
        assert sections[0][0] > order[2]


def test_the_activity_chart_is_html_bars_without_images() -> None:
    stamps = [1_794_816_000 + hours * 3600 for hours in (1, 2, 49, 50, 51, 52)]
    digest = digest_of({"C1": [message(0, "hi") | {"ts": f"{s}.000000"} for s in stamps]})
    text, html = parts(mail(digest))
    assert "<img" not in html
    # One cell a day, the busiest full height (60 px), a day with half as many half as high.
    assert html.count('bgcolor="#1264a3"') == 2
    assert 'height="60"' in html and 'height="30"' in html
    assert ">Wed 18<" in html and ">Tue 17<" in html
    assert "Activity: ▅▁█▁▁▁▁▁ Mon 16 – Mon 23 · busiest Wed 18 (4)" in text


def test_the_subject_is_the_schedules_title() -> None:
    digest = digest_of({"C1": [message(1, "hi")]}, title="Engineering weekly")
    assert mail(digest)["Subject"] == "Engineering weekly: 16–23 Nov 2026"
