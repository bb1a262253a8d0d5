"""A digest as Slack Block Kit messages: the post, then as many thread replies as Slack's
limits need. What does not fit one message continues in the next; nothing is cut.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jobs.digest.model import Digest
from jobs.digest.render.outline import Item, Outline, Section, clip, outline
from jobs.slack.mrkdwn import escape

MAX_BLOCKS = 50
MAX_SECTION = 3_000
MAX_HEADER = 150
# Slack refuses messages near 13k characters of block text (`msg_blocks_too_long`).
MAX_MESSAGE = 12_000

Block = dict[str, Any]


@dataclass(frozen=True)
class SlackMessage:
    text: str
    blocks: list[dict[str, Any]]


def slack_messages(digest: Digest, names: Mapping[str, str]) -> list[SlackMessage]:
    """The digest post, then as many thread replies as Slack's limits need; nothing is cut."""
    shown = outline(digest, names)
    pages = paginate(units(shown), shown.title)
    return [
        SlackMessage(escape(fallback(shown, part, len(pages))), blocks)
        for part, blocks in enumerate(pages)
    ]


def fallback(shown: Outline, part: int, parts: int) -> str:
    if part == 0:
        return shown.summary
    return f"{shown.title}, {shown.dates} (continued, part {part + 1} of {parts})"


# A unit is blocks that go in one message, and the channel it continues (none for a new start).
Unit = tuple[str | None, list[Block]]


def units(shown: Outline) -> Iterator[Unit]:
    yield None, intro(shown)
    for channel in shown.channels:
        heading = [{"type": "divider"}, mrkdwn(f"*{escape(channel.name)}*")]
        texts = [text for section in channel.sections for text in section_texts(section)]
        yield None, [*heading, mrkdwn(texts[0])]
        for text in texts[1:]:
            yield channel.name, [mrkdwn(text)]


def intro(shown: Outline) -> list[Block]:
    header = {"type": "header", "text": plain_text(clip(shown.title, MAX_HEADER))}
    context = {"type": "context", "elements": [mrkdwn_text(escape(shown.window))]}
    fields = [mrkdwn_text(f"*{f.label}:* {escape(f.value)}") for f in shown.figures]
    stats = {"type": "section", "fields": fields} if fields else mrkdwn("No activity from people.")
    return [header, context, stats]


def section_texts(section: Section) -> list[str]:
    """The section as mrkdwn texts of at most `MAX_SECTION` characters, split between lines."""
    title = f"*{escape(section.title)}*"
    texts, text = [], title
    for line in map(bullet, section.items):
        if len(text) + 1 + len(line) > MAX_SECTION:
            texts.append(text)
            text = f"{title} (continued)"
        text += "\n" + line
    return [*texts, text]


def bullet(item: Item) -> str:
    label = escape(item.label)
    if item.url:
        label = f"<{escape(item.url)}|{label}>"
    return f"• {label} — {escape(item.detail)}" if item.detail else f"• {label}"


def paginate(units: Iterator[Unit], title: str) -> list[list[Block]]:
    """Units packed into messages within the block and character limits."""
    pages: list[list[Block]] = []
    page: list[Block] = []
    size = 0
    for continues, blocks in units:
        needed = text_size(blocks)
        if page and (len(page) + len(blocks) > MAX_BLOCKS or size + needed > MAX_MESSAGE):
            pages.append(page)
            note = f"_{escape(title)}, continued_" + (
                f" · *{escape(continues)}*" if continues else ""
            )
            page = [{"type": "context", "elements": [mrkdwn_text(note)]}]
            size = text_size(page)
        page.extend(blocks)
        size += needed
    return [*pages, page]


def text_size(blocks: list[Block]) -> int:
    """Characters of text in the blocks, as Slack counts toward a message's limit."""
    texts = (
        part["text"]
        for block in blocks
        for part in (block.get("text"), *block.get("fields", ()), *block.get("elements", ()))
        if part
    )
    return sum(len(text) for text in texts)


def mrkdwn(text: str) -> Block:
    return {"type": "section", "text": mrkdwn_text(text)}


def mrkdwn_text(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def plain_text(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}
