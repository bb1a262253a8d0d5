"""What a message says: a decision, an action item, that something is done; and its excerpt.

Each is read from the raw Slack text of one message and called for every message of a history,
so each starts with one cheap search that fails fast on an ordinary message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import regex

EXCERPT = 200
Reactions = Sequence[Mapping[str, Any]] | None

CHECKS = frozenset({"white_check_mark", "heavy_check_mark", "ballot_box_with_check"})
DECISION_MARKS = CHECKS | {"decision"}
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
QUOTE = re.compile(r"^(?:&gt;|>).*$", re.MULTILINE)
SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
DECIDED = re.compile(
    r"\b(?:we\s+decided|decided\s+to|let'?s\s+go\s+with|agreed\s+to|we\s+agreed"
    r"|we'?ll\s+go\s+with|we\s+will\s+go\s+with|going\s+with)\b|\bdecision\s*:",
    re.IGNORECASE,
)
MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
ASKED = re.compile(
    r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>[\s,:]*(?:can\s+you|could\s+you|can\s+u|would\s+you|please)\b",
    re.IGNORECASE,
)
NOTED = re.compile(r"(?:^|\s)(?:todo\b:?|action\s+items?\s*:|ai\s*:)", re.IGNORECASE)
WHEN = (
    r"(?:mon|tues|wednes|thurs|fri|satur|sun)day|today|tonight|tomorrow|eod|eow|cob"
    r"|end\s+of\s+(?:the\s+)?(?:day|week|month)|next\s+week|\d{1,2}/\d{1,2}|\d{4}-\d{2}-\d{2}"
    r"|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d{1,2}"
)
PROMISED = re.compile(rf"\bI(?:'ll|\s+will)\b[^.!?\n]*?\bby\s+(?:{WHEN})\b", re.IGNORECASE)
DONE_WORDS = r"done|fixed|merged|shipped|resolved|completed|deployed"
SETTLED_WORDS = r"fixed|resolved|merged|shipped|decided|done|solved"
NEGATED = re.compile(r"(?:\bnot|n't|\bnever|\bno)\s+(?:\w+\s+)?$", re.IGNORECASE)
DONE = re.compile(rf"\b(?:{DONE_WORDS})\b", re.IGNORECASE)
SETTLED = re.compile(rf"\b(?:{SETTLED_WORDS})\b", re.IGNORECASE)
GRAPHEME = regex.compile(r"\X")


@dataclass(frozen=True)
class Action:
    owner: str  # the Slack user ID of who is to do it


def said(text: str) -> str:
    """The text a person wrote themselves: no code, no quoted lines."""
    if "`" in text:
        text = CODE.sub(" ", text)
    if "&gt;" in text or text.startswith(">") or "\n>" in text:
        text = QUOTE.sub(" ", text)
    return text


def asked(sentence: str) -> bool:
    return sentence.rstrip().endswith("?")


def marked(reactions: Reactions, names: frozenset[str]) -> bool:
    return any(reaction.get("name") in names for reaction in reactions or ())


def may_say(text: str) -> bool:
    """Whether the words could be a decision or an action item: the union of `decides`' and
    `action`'s fast rejections, so most messages of a history are read this far only."""
    if "<@" in text:
        return True
    lowered = text.lower()
    return (
        "deci" in lowered
        or " with" in lowered
        or "agreed" in lowered
        or noted(lowered)
        or " by " in lowered
    )


def noted(lowered: str) -> bool:
    """Whether the lowercased text could hold a to-do (`NOTED`), without a regular expression."""
    return "todo" in lowered or "action" in lowered or "ai:" in lowered or "ai :" in lowered


def decides(text: str, reactions: Reactions) -> bool:
    """The message records a decision: in words (not asked as a question) or by a reaction."""
    if reactions and marked(reactions, DECISION_MARKS):
        return not asked(said(text)) if text else True
    lowered = text.lower()
    if "deci" not in lowered and " with" not in lowered and "agreed" not in lowered:
        return False  # the common case, without a regular expression
    if not DECIDED.search(text):
        return False
    return any(
        DECIDED.search(sentence) and not asked(sentence)
        for sentence in SENTENCE.findall(said(text))
    )


def action(text: str, author: str) -> Action | None:
    """A request to someone mentioned, a noted to-do, or a promise with a date; with its owner."""
    if "<@" not in text:
        lowered = text.lower()
        if not noted(lowered) and " by " not in lowered:
            return None  # the common case, without a regular expression
        if not NOTED.search(text) and not PROMISED.search(text):
            return None
    own = said(text)
    request = ASKED.search(own)
    if request:
        return Action(request.group(1))
    if NOTED.search(own):
        mentioned = MENTION.search(own)
        return Action(mentioned.group(1) if mentioned else author)
    if PROMISED.search(own):
        return Action(author)
    return None


def says(pattern: re.Pattern[str], text: str) -> bool:
    """`text` says one of the words, outside a question and not negated ("not done yet")."""
    for sentence in SENTENCE.findall(said(text)):
        if asked(sentence):
            continue
        for found in pattern.finditer(sentence):
            if not NEGATED.search(sentence[: found.start()]):
                return True
    return False


def done(text: str, reactions: Reactions) -> bool:
    """A reply saying the thing asked for is done, or a check mark on it."""
    if marked(reactions, CHECKS):
        return True
    return bool(text) and DONE.search(text) is not None and says(DONE, text)


def resolves(text: str, reactions: Reactions) -> bool:
    """A reply that settles a conversation: a check mark, or a word like "fixed"."""
    if marked(reactions, CHECKS):
        return True
    return bool(text) and SETTLED.search(text) is not None and says(SETTLED, text)


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """The start of `text`: cut at a word when one is near the end, and never inside a grapheme
    (an emoji sequence, a letter and its marks), Slack markup (`<…>`) or an entity (`&amp;`)."""
    if len(text) <= limit:
        return text
    cut = ""
    for grapheme in GRAPHEME.finditer(text, 0, limit + 8):
        if len(cut) + len(grapheme.group()) > limit:
            break
        cut += grapheme.group()
    if cut.rfind("<") > cut.rfind(">"):
        cut = cut[: cut.rfind("<")]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"
