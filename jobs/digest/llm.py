"""The optional generated summary: the window's messages to an OpenAI-compatible chat
completions endpoint (OpenAI, Azure OpenAI, Ollama, vLLM), its answer back.

Only what a person could read in the channel is sent, by display name, with e-mail addresses
and anything shaped like a credential taken out. Nothing here logs, and a failure's message
never holds the key, the prompt or the answer.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from jobs.errors import LLMFailed

LIMIT = 24_000  # characters of transcript sent
ANSWER = 2_000  # characters of answer kept
INSTRUCTIONS = (
    "You summarize a team's Slack channels for a digest. In at most 5 short bullet points of "
    "plain text, say what happened, what was decided and what is still open. Do not mention "
    "people with @, do not invent anything, and write in the language of the messages."
)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
CREDENTIALS = re.compile(
    r"xox[a-z]-[A-Za-z0-9-]+|sk-[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{12,}|(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"
    r"|\b[0-9a-fA-F]{32,}\b|\b[A-Za-z0-9+/_-]{40,}={0,2}"
)


@dataclass(frozen=True)
class Line:
    who: str  # a display name, never a user ID
    text: str  # plain text


def scrub(text: str) -> str:
    """The text without e-mail addresses or anything credential-shaped."""
    return CREDENTIALS.sub("[redacted]", EMAIL.sub("[email]", text))


def prompt(title: str, lines: Sequence[Line], limit: int = LIMIT) -> list[dict[str, str]]:
    """The chat messages asking for the summary; the latest lines that fit in `limit`."""
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        said = f"{scrub(line.who)}: {scrub(line.text)}"
        if size + len(said) + 1 > limit:
            kept.append("(earlier messages omitted)")
            break
        kept.append(said)
        size += len(said) + 1
    transcript = "\n".join(reversed(kept))
    return [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": f"Digest: {scrub(title)}\n\nMessages:\n{transcript}"},
    ]


def endpoint(url: str) -> str:
    """The chat completions URL: as given when it names it (Azure's deployment URLs), else the
    base's `/chat/completions`."""
    parts = urlsplit(url)
    if parts.path.rstrip("/").endswith("/chat/completions"):
        return url
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/chat/completions"))


def summarize(
    url: str,
    key: str | None,
    model: str,
    messages: list[dict[str, str]],
    timeout: float,
) -> str:
    """The endpoint's answer to the messages; `LLMFailed` on any error, or past `timeout`
    seconds in all."""
    body = {"model": model, "messages": messages, "temperature": 0.2, "max_tokens": 400}
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if key:
        headers |= {"Authorization": f"Bearer {key}", "api-key": key}
    request = urllib.request.Request(
        endpoint(url), json.dumps(body).encode(), headers, method="POST"
    )
    deadline = time.monotonic() + timeout
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = read_by(response, deadline)
    except urllib.error.HTTPError as error:
        raise LLMFailed(f"LLM endpoint answered {error.code}") from None
    except TimeoutError:
        raise LLMFailed(f"LLM endpoint timed out after {timeout:g}s") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        if isinstance(reason, TimeoutError):
            raise LLMFailed(f"LLM endpoint timed out after {timeout:g}s") from None
        shown = reason.strerror if isinstance(reason, OSError) and reason.strerror else "error"
        raise LLMFailed(f"LLM endpoint unreachable: {shown.lower()}") from None
    return answer(raw)


def read_by(response: Any, deadline: float) -> bytes:
    """The whole body, or a timeout once the deadline passed: a slow trickle cannot hold a
    worker beyond it."""
    chunks = []
    while chunk := response.read(65_536):
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise TimeoutError
    return b"".join(chunks)


def answer(raw: bytes) -> str:
    try:
        content = json.loads(raw)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise LLMFailed("LLM answer was not a chat completion") from None
    if not isinstance(content, str) or not content.strip():
        raise LLMFailed("LLM answer was empty")
    text = content.strip()
    return text if len(text) <= ANSWER else text[: ANSWER - 1].rstrip() + "…"
