"""The digest as an email: text and HTML alternatives of the outline Slack's render shares.

The `Message-ID` comes from the run and the recipient, so a retried send is the same message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from email.message import EmailMessage
from email.policy import default
from email.utils import format_datetime, parseaddr
from urllib.parse import quote, urlencode

import css_inline
import jinja2

from jobs.digest import unsubscribe
from jobs.digest.model import Digest
from jobs.digest.render.outline import outline

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("jobs", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)
# Header lines up to RFC 5322's limit: folding a long unsubscribe URL would turn it into an
# encoded word, which RFC 2369 readers do not decode. Bodies are encoded before this applies.
HEADERS = default.clone(max_line_length=998)


def email_message(
    digest: Digest,
    names: Mapping[str, str],
    *,
    schedule: str,
    sender: str,
    recipient: str,
    run_id: str,
    public_url: str | None,
    link_key: bytes,
    now: datetime,
) -> EmailMessage:
    """One recipient's `multipart/alternative` digest mail, with its unsubscribe headers (for
    `schedule`, the name deliveries check unsubscribing against)."""
    shown = outline(digest, names)
    link = unsubscribe_link(schedule, sender, recipient, public_url, link_key)
    message = EmailMessage()
    message["Subject"] = f"{shown.title}: {shown.dates}"
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id(run_id, recipient, sender)
    # A machine's mail: out-of-office and other auto-replies must not answer it (RFC 3834;
    # Exchange and Outlook read only their own header).
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message["List-Unsubscribe"] = f"<{link}>"
    if link.startswith("https://"):  # RFC 8058 one-click needs HTTPS
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    context = {"digest": shown, "unsubscribe": link}
    text = TEMPLATES.get_template("digest.txt").render(context)
    html = css_inline.inline(TEMPLATES.get_template("digest.html").render(context))
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    message.policy = HEADERS
    return message


def message_id(run_id: str, recipient: str, sender: str) -> str:
    """The same for the same run and recipient, so a resent digest is recognisably the same."""
    hashed = hashlib.sha256(f"{run_id}\n{recipient}".encode()).hexdigest()[:32]
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    return f"<{hashed}@{domain}>"


def unsubscribe_link(
    schedule: str, sender: str, recipient: str, public_url: str | None, link_key: bytes
) -> str:
    """Our signed web link when there is a public URL; otherwise a mail to the sender."""
    if public_url:
        return unsubscribe.url(public_url, link_key, schedule, recipient)
    query = urlencode({"subject": f"unsubscribe {schedule}"}, quote_via=quote)
    return f"mailto:{parseaddr(sender)[1]}?{query}"
