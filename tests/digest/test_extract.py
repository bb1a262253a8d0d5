from __future__ import annotations

import pytest

from jobs.digest.extract import Action, action, decides, done, excerpt, resolves

CHECK = [{"name": "white_check_mark", "users": ["U1"], "count": 1}]
HEART = [{"name": "heart", "users": ["U1"], "count": 3}]


@pytest.mark.parametrize(
    "text",
    [
        "Decision: we ship on Monday",
        "We decided to drop IE11",
        "ok, let's go with Postgres",
        "Agreed to freeze the API until March.",
        "we'll go with option B then",
        "Going with the blue logo.",
    ],
)
def test_decisions_in_words(text: str) -> None:
    assert decides(text, None)


@pytest.mark.parametrize(
    "text",
    [
        "have we decided?",
        "Are we going with Postgres?",
        "&gt; we decided to drop IE11\nwhat do you think?",  # quoting someone
        "`decision: yes` is the flag's syntax",  # code
        "I'm going to lunch",
        "the decision tree model is slow",
    ],
)
def test_near_misses_are_not_decisions(text: str) -> None:
    assert not decides(text, None)


def test_a_check_mark_records_a_decision_unless_it_is_a_question() -> None:
    assert decides("ship it", CHECK)
    assert decides("", [{"name": "decision", "count": 1}])
    assert not decides("ship it?", CHECK)
    assert not decides("ship it", HEART)


@pytest.mark.parametrize(
    ("text", "owner"),
    [
        ("<@U2> can you review the PR?", "U2"),
        ("<@U2|bob> could you rotate the keys", "U2"),
        ("<@U2>, please update the runbook", "U2"),
        ("TODO: rotate the staging certificates", "U1"),
        ("todo <@U3> fix the flaky test", "U3"),
        ("Action item: write the postmortem", "U1"),
        ("AI: <@U4> books the room", "U4"),
        ("I'll write the rollback plan by Thursday", "U1"),
        ("I will send the numbers by EOD", "U1"),
        ("I'll fix it by 12/3", "U1"),
    ],
)
def test_action_items_and_their_owners(text: str, owner: str) -> None:
    assert action(text, "U1") == Action(owner)


@pytest.mark.parametrize(
    "text",
    [
        "<@U2> thanks!",
        "I'll be honest, that was rough",
        "I'll look at it",
        "can you believe it?",
        "```\n# TODO: remove\n```",
        "&gt; TODO: rotate the keys",
        "the todolist app is neat",
    ],
)
def test_near_misses_are_not_action_items(text: str) -> None:
    assert action(text, "U1") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Done, rotated them", True),
        ("fixed in main", True),
        ("merged :tada:", True),
        ("not done yet", False),
        ("it isn't fixed", False),
        ("is it done?", False),
        ("thanks", False),
    ],
)
def test_done_says_so_without_a_negation_or_a_question(text: str, expected: bool) -> None:
    assert done(text, None) is expected


def test_a_check_mark_is_done_and_settles() -> None:
    assert done("ok", CHECK) and resolves("ok", CHECK)
    assert resolves("Rolled back: fixed", None) and resolves("we decided: yes", None)
    assert not resolves("still broken?", None) and not resolves("no idea", HEART)


def test_excerpts_cut_at_a_word_and_never_inside_markup_or_an_entity() -> None:
    assert excerpt("short") == "short"
    cut = excerpt("word " * 60)
    assert cut.endswith("word…") and len(cut) <= 201
    assert excerpt("x" * 190 + " <https://example.com/a-long-path|label>") == "x" * 190 + "…"
    assert excerpt("y" * 198 + "&amp;&amp;") == "y" * 198 + "…"


@pytest.mark.parametrize(
    "text",
    [
        "漢字かな交じり文" * 40,  # no spaces
        "مرحبا بالعالم " * 30,
        "שלום עולם " * 30,
        "👩‍👩‍👧‍👦" * 60,  # one grapheme of seven code points, again and again
        "🇩🇪🇫🇷" * 80,
        "e\u0301" * 150,  # a letter and its combining accent
    ],
)
def test_excerpts_never_split_a_grapheme(text: str) -> None:
    import regex

    cut = excerpt(text, 50).removesuffix("…")
    assert len(cut) <= 50
    assert text.startswith(cut)
    graphemes = regex.findall(r"\X", text)
    assert regex.findall(r"\X", cut) == graphemes[: len(regex.findall(r"\X", cut))]
    rest = text[len(cut) :]
    assert not rest or regex.match(r"\X", rest).group() == graphemes[len(regex.findall(r"\X", cut))]


def test_a_huge_message_is_cheap_to_excerpt() -> None:
    assert len(excerpt("a " * 20_000)) <= 201
