"""The helper process of `digests preview`: the same tally and keywords as folding here, and a
helper that dies costs time, not messages. Each case runs in a fresh interpreter, as the
command does: the helper is forked before any thread exists."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SETUP = """
import json, os, sys
from datetime import UTC, datetime, timedelta
from jobs.digest import activity, helper, topics
from jobs.digest.collect import Collector
from jobs.digest.model import Window
from jobs.digest.summarize import ChannelTally
from sandbox.workspace import generate
from tests.digest.test_topics import chat

end = datetime(2026, 11, 30, 9, tzinfo=UTC)
workspace = generate(seed=7, messages=3000, start=end - timedelta(days=7), end=end)
channel = max(workspace.messages, key=lambda c: len(workspace.messages[c]))
newest_first = list(reversed(workspace.messages[channel]))
pages = [
    {"messages": newest_first[i : i + 200], "response_metadata": {"next_cursor": str(i + 200)}}
    for i in range(0, len(newest_first), 200)
]
pages[-1]["response_metadata"] = {"next_cursor": ""}
window = Window(end - timedelta(days=7), end)


class Pages:
    \"\"\"The channel's history as `SharedPages` gives it, and no thread replies.\"\"\"

    def __init__(self, kill_after=None):
        self.kill_after = kill_after

    def pages(self, method, cursor=None, **params):
        if method != "conversations.history":
            return iter(())
        return self.history()

    def history(self):
        for number, page in enumerate(pages):
            if number == self.kill_after:
                for child in __import__("multiprocessing").active_children():
                    os.kill(child.pid, 9)
                    child.join()
            yield page


def tally(shared):
    collector = Collector(shared, window, None, lambda state: None, lambda count: None)
    return collector.channel(channel, "busy").to_json(), collector.messages
"""

CASES = {
    # Folded in the helper, then here: the same tally, every message counted once.
    "fold": """
helper.start()
there = tally(Pages())
helper.stop()
here = tally(Pages())
print(json.dumps([there == here, there[1], len(newest_first), "yake" in sys.modules]))
""",
    # The helper killed after two pages: the channel is folded again here, counted once.
    "killed": """
helper.start()
there = tally(Pages(kill_after=2))
gone = helper.current is None
here = tally(Pages())
print(json.dumps([there == here, there[1], len(newest_first), gone]))
""",
    "keywords": """
helper.start()
found = topics.counts(chat(6))
imported = "yake" in sys.modules
helper.stop()
print(json.dumps([found == topics.counts(chat(6)), found.get("exports migration"), imported]))
""",
    # Ctrl-C at a terminal reaches the helper too: the command answers it, not the helper.
    "interrupted": """
import signal, time
helper.start()
(child,) = __import__("multiprocessing").active_children()
time.sleep(0.5)
os.kill(child.pid, signal.SIGINT)
time.sleep(0.5)
found = topics.counts(chat(6))
print(json.dumps([child.is_alive(), found.get("exports migration"), helper.current is not None]))
""",
    "keywords without it": """
helper.start()
for child in __import__("multiprocessing").active_children():
    os.kill(child.pid, 9)
    child.join()
found = topics.counts(chat(7))
print(json.dumps([found.get("exports migration"), helper.current is None]))
""",
}


def run(case: str) -> list[object]:
    done = subprocess.run(
        [sys.executable, "-c", SETUP + CASES[case]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # no warning, and nothing of the helper's exit
    result: list[object] = json.loads(done.stdout)
    return result


def test_a_channel_folded_in_the_helper_is_the_channel_folded_here() -> None:
    same, counted, messages, imported_here = run("fold")
    assert same is True
    assert counted == messages
    assert isinstance(messages, int) and messages > 1000
    assert imported_here is False  # YAKE was the helper's to import


def test_a_helper_killed_mid_channel_costs_a_second_fold_not_a_message() -> None:
    same, counted, messages, gone = run("killed")
    assert same is True and counted == messages
    assert gone is True


def test_the_helper_finds_the_keywords_and_this_process_never_imports_yake() -> None:
    same, count, imported_here = run("keywords")
    assert same is True and count == 6
    assert imported_here is False


def test_keywords_are_found_here_when_the_helper_is_gone() -> None:
    count, gone = run("keywords without it")
    assert count == 7 and gone is True


def test_an_interrupt_is_the_commands_to_answer_not_the_helpers() -> None:
    alive, count, kept = run("interrupted")
    assert alive is True and count == 6 and kept is True
