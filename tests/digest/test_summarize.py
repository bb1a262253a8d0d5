from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from jobs.digest.extract import excerpt
from jobs.digest.model import Link, Message, Post, SharedFile, Stats, Window
from jobs.digest.summarize import MAX_SHARED, ChannelTally, summarize, with_permalinks

WINDOW = Window(datetime(2026, 11, 16, 8, tzinfo=UTC), datetime(2026, 11, 23, 8, tzinfo=UTC))


def ts(n: int) -> str:
    return f"{1_700_000_000 + n}.000100"


def said(n: int, user: str = "U1", text: str = "hello", **extra: Any) -> Message:
    return {"type": "message", "user": user, "text": text, "ts": ts(n), **extra}


def tally_of(messages: list[Message], top: int = 5) -> ChannelTally:
    tally = ChannelTally("C1", "eng", top)
    for message in messages:
        tally.add_page([message])
    return tally


def test_only_people_count_in_the_figures() -> None:
    digest = tally_of(
        [
            said(1),
            said(2, "U2", subtype="thread_broadcast", thread_ts=ts(0)),
            said(3, "U2", subtype="file_share", files=[{"name": "a.png"}]),
            said(4, "U3", subtype="me_message"),
            said(5, "U4", subtype="bot_message", bot_id="B1"),
            said(6, "U4", bot_id="B1"),
            said(7, "U5", subtype="channel_join"),
            said(8, "U6", subtype="channel_leave"),
            said(9, subtype="channel_topic"),
            said(10, subtype="channel_purpose"),
            said(11, subtype="channel_name"),
            said(12, subtype="tombstone", reply_count=4),
            said(13, subtype="pinned_item"),
        ]
    ).result()
    assert digest.stats == Stats(messages=4, people=3, files=1)
    assert digest.people == [("U2", 2), ("U1", 1), ("U3", 1)]
    assert digest.bot_messages == 2
    assert digest.joined == ["U5"]
    assert digest.left == ["U6"]


def test_an_edited_message_counts_once() -> None:
    edited = said(1, text="fixed typo", edited={"user": "U1", "ts": ts(2)})
    change = said(2, subtype="message_changed", hidden=True, message=edited)
    assert tally_of([edited, change]).result().stats.messages == 1


def test_threads_rank_by_distinct_repliers_then_replies() -> None:
    threads = tally_of(
        [
            said(1, text="many replies, one person", reply_count=30, reply_users_count=1),
            said(2, text="three people", reply_count=3, reply_users_count=3),
            said(3, text="three people, more", reply_count=9, reply_users_count=3),
            said(4, text="no replies", reply_count=0),
        ],
        top=2,
    ).result()
    assert threads.stats.threads == 3
    assert [(p.text, p.replies, p.repliers) for p in threads.threads] == [
        ("three people, more", 9, 3),
        ("three people", 3, 3),
    ]


def test_reactions_are_summed_and_the_most_reacted_ranked() -> None:
    def reactions(*counts: int) -> list[dict[str, Any]]:
        return [{"name": f"e{i}", "users": [], "count": c} for i, c in enumerate(counts)]

    digest = tally_of(
        [
            said(1, text="a", reactions=reactions(2, 3)),
            said(2, text="b", reactions=reactions(9)),
            said(3, text="c", reactions=reactions(1)),
            said(4, text="bot", bot_id="B1", reactions=reactions(50)),
        ],
        top=2,
    ).result()
    assert digest.stats.reactions == 15
    assert [(p.text, p.reactions) for p in digest.reacted] == [("b", 9), ("a", 5)]


def test_most_active_people_first_ties_by_id() -> None:
    messages = [said(i, user) for i, user in enumerate(["U3", "U1", "U2", "U1", "U3", "U4"])]
    assert tally_of(messages, top=3).result().people == [("U1", 2), ("U3", 2), ("U2", 1)]


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("Why does the build fail?", True),
        ("Is this right? I think so", True),
        ("deploy?\nthanks", True),
        ("Anyone (free today?)", True),
        ("see <https://example.com/search?q=1|the search>", False),
        ("the regex ```a?b``` works", False),
        ("use `x?` there", False),
        ("no question here", False),
    ],
)
def test_a_question_asks_outside_code_and_urls(text: str, asks: bool) -> None:
    assert bool(tally_of([said(1, text=text)]).result().questions) is asks


def test_unanswered_questions_are_top_level_without_replies_oldest_first() -> None:
    digest = tally_of(
        [
            said(5, text="newest?", reply_count=0),
            said(1, text="answered?", reply_count=2, reply_users_count=1),
            said(2, text="oldest?"),
            said(3, text="broadcast reply?", subtype="thread_broadcast", thread_ts=ts(1)),
            said(4, text="bots ask?", bot_id="B1"),
            said(6, text="dropped, the newest?"),
        ],
        top=2,
    ).result()
    assert [(p.ts, p.text) for p in digest.questions] == [(ts(2), "oldest?"), (ts(5), "newest?")]


def test_links_are_all_counted_and_kept_once_each() -> None:
    digest = tally_of(
        [
            said(1, "U1", "see <https://a.example/x?p=1&amp;q=2|docs> and <http://b.example>"),
            said(2, "U2", "again <https://a.example/x?p=1&amp;q=2>"),
            said(3, "U3", "not a link: <mailto:x@example.com> <#C2|random>"),
        ]
    ).result()
    assert digest.stats.links == 3
    first = "see <https://a.example/x?p=1&amp;q=2|docs> and <http://b.example>"
    assert digest.links == [
        Link(
            "https://a.example/x?p=1&q=2",
            Post("C1", ts(2), "U2", "again <https://a.example/x?p=1&amp;q=2>"),
            2,
        ),
        Link("http://b.example", Post("C1", ts(1), "U1", first), 1),
    ]


def test_files_are_counted_with_their_slack_permalinks() -> None:
    files = [
        {"id": "F1", "name": "plan.pdf", "permalink": "https://t.slack.com/files/U1/F1/plan.pdf"},
        {"id": "F2", "title": "Untitled", "permalink": "javascript:alert(1)"},
        {"id": "F3", "mode": "tombstone"},
    ]
    digest = tally_of([said(1, subtype="file_share", files=files)]).result()
    assert digest.stats.files == 3
    post = Post("C1", ts(1), "U1", "hello")
    assert sorted(digest.files, key=lambda f: f.name) == [
        SharedFile("Untitled", post, 1, None),
        SharedFile("file", post, 1, None),
        SharedFile("plan.pdf", post, 1, "https://t.slack.com/files/U1/F1/plan.pdf"),
    ]


def test_excerpts_cut_at_a_word_and_never_inside_markup() -> None:
    words = "word " * 60
    assert excerpt("short") == "short"
    cut = excerpt(words)
    assert cut.endswith("word…") and len(cut) <= 201
    assert excerpt("x" * 190 + " <https://example.com/a-long-path|label>") == "x" * 190 + "…"


def mixed(count: int, seed: int = 7) -> list[Message]:
    """A busy channel: every kind of message, newest first as the collector streams them."""
    pick = random.Random(seed)
    messages: list[Message] = []
    for n in range(count, 0, -1):
        user = f"U{pick.randrange(40)}"
        kind = pick.randrange(8)
        extra: dict[str, Any] = {}
        text = f"message {n}"
        if kind == 0:
            extra = {
                "reply_count": pick.randrange(1, 20),
                "reply_users_count": pick.randrange(1, 6),
            }
        elif kind == 1:
            extra = {"reactions": [{"name": "+1", "users": [], "count": pick.randrange(1, 30)}]}
        elif kind == 2:
            text = f"question {n}?"
        elif kind == 3:
            text = f"link <https://example.com/{n % 300}|page>"
        elif kind == 4:
            extra = {"subtype": "file_share", "files": [{"name": f"f{n}.txt"}]}
        elif kind == 5:
            extra = {"subtype": pick.choice(["channel_join", "channel_leave", "bot_message"])}
        messages.append(said(n, user, text, **extra))
    return messages


@pytest.mark.parametrize("stop", [0, 1, 333, 999, 1500])
def test_a_checkpoint_resumes_to_exactly_the_same_result(stop: int) -> None:
    messages = mixed(1500)
    whole = tally_of(messages)
    first = tally_of(messages[:stop])
    resumed = ChannelTally.from_json(json.loads(json.dumps(first.to_json())))
    for message in messages[stop:]:
        resumed.add_page([message])
    assert resumed.result() == whole.result()
    assert resumed.to_json() == whole.to_json()


def test_the_order_messages_arrive_in_does_not_matter() -> None:
    messages = mixed(800)
    shuffled = messages[:]
    random.Random(3).shuffle(shuffled)
    assert tally_of(shuffled).result() == tally_of(messages).result()


def test_memory_stays_bounded_however_many_messages() -> None:
    tally = ChannelTally("C1", "eng", top=5)
    for n in range(50_000):
        asked = said(
            n,
            f"U{n % 100}",
            f"why <https://example.com/{n}> ?",
            reactions=[{"name": "+1", "users": [], "count": n % 7 + 1}],
            files=[{"name": f"{n}.png"}],
        )
        thread = said(n, f"U{n % 100}", f"thread {n}", reply_count=n % 9 + 1, reply_users_count=1)
        tally.add_page([asked, thread])
    assert tally.messages == 100_000 and tally.links == 50_000 and tally.files == 50_000
    assert len(tally.top_threads.heap) == len(tally.top_reacted.heap) == 5
    assert len(tally.top_questions.heap) == 5
    assert MAX_SHARED <= len(tally.top_links) <= 2 * MAX_SHARED
    assert MAX_SHARED <= len(tally.top_files) <= 2 * MAX_SHARED
    assert len(tally.people) == 100
    assert len(json.dumps(tally.to_json())) < 200_000


def test_summarize_adds_up_channels_and_counts_each_person_once() -> None:
    eng = tally_of([said(1, "U1", "a?"), said(2, "U2", reply_count=1, reply_users_count=1)])
    ops = ChannelTally("C2", "ops")
    for message in [said(3, "U2", "<https://x.example>"), said(4, "U3", subtype="channel_join")]:
        ops.add_page([message])
    previous = Stats(messages=1)
    digest = summarize(
        "eng-weekly digest", WINDOW, [eng, ops], previous=previous, sections=["threads"]
    )
    assert digest.totals == Stats(messages=3, threads=1, people=2, links=1)
    assert [c.name for c in digest.channels] == ["eng", "ops"]
    assert digest.channels[1].joined == ["U3"]
    assert (digest.title, digest.window, digest.previous) == ("eng-weekly digest", WINDOW, previous)
    assert digest.sections == ("threads",)
    assert not digest.quiet


def test_a_window_with_bots_only_is_quiet_but_one_with_a_join_is_not() -> None:
    bots = tally_of([said(1, bot_id="B1"), said(2, subtype="bot_message")])
    assert summarize("s", WINDOW, [bots]).quiet
    bots.add_page([said(3, "U9", subtype="channel_join")])
    assert not summarize("s", WINDOW, [bots]).quiet


def test_summarize_refuses_an_unknown_section() -> None:
    with pytest.raises(ValueError, match="'charts'"):
        summarize("s", WINDOW, [], sections=["summary", "charts"])


def test_with_permalinks_fills_posts_and_files() -> None:
    tally = tally_of(
        [
            said(1, text="why?"),
            said(2, reply_count=1, reply_users_count=1),
            said(3, subtype="file_share", files=[{"name": "a"}]),
            said(4, subtype="file_share", files=[{"name": "b", "permalink": "https://s/files/b"}]),
        ]
    )
    digest = summarize("s", WINDOW, [tally])
    linked = with_permalinks(
        digest, lambda p: f"https://t.slack.com/archives/C1/p{int(float(p.ts)) - 1_700_000_000}"
    ).channels[0]
    assert [p.permalink for p in linked.questions] == ["https://t.slack.com/archives/C1/p1"]
    assert [p.permalink for p in linked.threads] == ["https://t.slack.com/archives/C1/p2"]
    assert sorted((f.post.permalink, f.permalink) for f in linked.files) == [
        ("https://t.slack.com/archives/C1/p3", None),
        ("https://t.slack.com/archives/C1/p4", "https://s/files/b"),
    ]
    assert digest.channels[0].questions[0].permalink is None  # the input is left as it was


CHECK = [{"name": "white_check_mark", "users": ["U3"], "count": 1}]


def thread_of(
    parent: int, replies: list[tuple[int, str, str, list[dict[str, Any]]]]
) -> list[Message]:
    """A thread as `conversations.replies` returns it: the parent, then its replies."""
    return [said(parent, "U1", "the opening")] + [
        said(n, user, text, thread_ts=ts(parent), **({"reactions": marks} if marks else {}))
        for n, user, text, marks in replies
    ]


def test_a_highlight_ends_with_the_reply_that_settled_it() -> None:
    tally = tally_of([said(1, "U1", "search is stale?", reply_count=3, reply_users_count=3)])
    assert tally.wanted_threads() == [ts(1)]
    tally.add_thread(
        ts(1),
        thread_of(
            1,
            [
                (2, "U2", "seeing it too", []),
                (3, "U3", "rolled back the TTL: fixed", []),
                (4, "U4", "thanks!", [{"name": "heart", "users": [], "count": 5}]),
            ],
        ),
    )
    (highlight,) = tally.result().highlights
    assert highlight.post.ts == ts(1)
    assert highlight.outcome is not None
    assert (highlight.outcome.ts, highlight.outcome.thread) == (ts(3), ts(1))
    assert highlight.people == ("U1", "U2", "U3", "U4")


def test_without_a_settling_reply_the_outcome_is_the_most_reacted_then_the_latest() -> None:
    liked: list[dict[str, Any]] = [{"name": "heart", "users": [], "count": 2}]
    none: list[dict[str, Any]] = []
    cases: list[tuple[list[tuple[int, str, str, list[dict[str, Any]]]], str]] = [
        ([(2, "U2", "maybe", liked), (3, "U3", "or not", none)], ts(2)),
        ([(2, "U2", "maybe", none), (3, "U3", "or not", none)], ts(3)),
    ]
    for replies, expected in cases:
        tally = tally_of([said(1, reply_count=2, reply_users_count=2)])
        tally.add_thread(ts(1), thread_of(1, replies))
        outcome = tally.result().highlights[0].outcome
        assert outcome is not None and outcome.ts == expected


def test_decisions_are_found_once_and_questions_are_not_decisions() -> None:
    digest = tally_of(
        [
            said(1, "U1", "Decision: we'll go with Postgres"),
            said(2, "U2", "decision:   we'll go with postgres"),
            said(3, "U3", "have we decided on the date?"),
            said(4, "U4", "ship it", reactions=CHECK),
        ]
    ).result()
    assert [p.ts for p in digest.decisions] == [ts(4), ts(2)]


def test_an_action_item_is_done_when_a_later_reply_says_so() -> None:
    tally = tally_of(
        [
            said(1, "U1", "<@U2> can you rotate the certificates?", reply_count=1),
            said(5, "U1", "TODO: update the runbook"),
        ]
    )
    assert ts(1) in tally.wanted_threads()
    tally.add_thread(ts(1), thread_of(1, [(2, "U2", "Done, rotated them", [])]))
    actions = tally.result().actions
    assert [(a.post.ts, a.owner, a.done) for a in actions] == [
        (ts(5), "U1", False),  # open first
        (ts(1), "U2", True),
    ]


def test_a_reply_also_sent_to_the_channel_counts_once_and_links_into_its_thread() -> None:
    broadcast = said(3, "U2", "TODO: I'll rotate them", subtype="thread_broadcast", thread_ts=ts(1))
    tally = tally_of([said(1, "U1", "certificates expire?", reply_count=1), broadcast])
    tally.add_thread(ts(1), [said(1, "U1", "certificates expire?"), broadcast])
    [item] = tally.result().actions
    assert (item.post.ts, item.post.thread) == (ts(3), ts(1))


def test_a_thread_is_folded_once_and_survives_a_checkpoint() -> None:
    tally = tally_of([said(1, reply_count=1, reply_users_count=1)])
    tally.add_thread(ts(1), thread_of(1, [(2, "U2", "fixed", [])]))
    resumed = ChannelTally.from_json(json.loads(json.dumps(tally.to_json())))
    resumed.add_thread(ts(1), thread_of(1, [(3, "U3", "something else", [])]))
    assert resumed.result() == tally.result()


def test_links_keep_the_message_they_came_with_and_how_often_shared() -> None:
    messages = [said(n, f"U{n}", f"read <https://a.example/{n % 2}> now") for n in range(1, 8)]
    messages.append(said(9, "U9", "<https://b.example>", reactions=CHECK * 1))
    digest = tally_of(messages, top=2).result()
    assert [(link.url, link.shares) for link in digest.links] == [
        ("https://a.example/1", 4),
        ("https://a.example/0", 3),
    ]
    assert digest.links[0].post.ts == ts(7) and digest.links[0].post.text.startswith("read")
    assert digest.more_links == 1


def test_days_count_human_messages_in_the_windows_zone() -> None:
    tally = ChannelTally("C1", "eng", days=[("2023-11-14", 0.0), ("2023-11-15", 1_700_000_005.0)])
    tally.add_page([said(1), said(4), said(5), said(6, bot_id="B1"), said(9)])
    assert tally.result().days == [("2023-11-14", 2), ("2023-11-15", 2)]
