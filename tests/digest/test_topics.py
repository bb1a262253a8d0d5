from __future__ import annotations

import json
import random

from jobs.digest.model import Topic
from jobs.digest.topics import Sample, clean, counts, rising


def chat(term_messages: int, seed: int = 1) -> list[str]:
    pick = random.Random(seed)
    filler = ["lunch is here", "standup notes are in the doc", "deployed the api to staging"]
    texts = [pick.choice(filler) + f" {n}" for n in range(40)]
    texts += [f"the exports migration moved table {n}" for n in range(term_messages)]
    return texts


def test_a_term_of_the_conversation_is_counted_in_the_messages_holding_it() -> None:
    found = counts(chat(6))
    assert found.get("exports migration") == 6


def test_markup_links_emoji_and_code_never_become_topics() -> None:
    text = (
        "see <https://docs.example.com/plan|the plan> :tada: `kubectl apply` <@U123ABC>\n"
        "&gt; quoted"
    )
    cleaned = clean(text)
    for gone in ("https", "docs.example.com", "tada", "kubectl", "U123ABC", "quoted"):
        assert gone not in cleaned
    found = counts([text] * 5)
    assert not any("http" in term or "tada" in term or "kubectl" in term for term in found)


def test_a_rising_term_is_shown_and_a_stable_one_is_not() -> None:
    before = {"lunch": 10, "exports migration": 2}
    now = {"lunch": 11, "exports migration": 9, "cutover": 4}
    assert rising(now, before) == [Topic("cutover", 4, 0), Topic("exports migration", 9, 2)]


def test_without_a_previous_run_the_most_frequent_terms_show() -> None:
    assert rising({"a": 1, "b": 5, "c": 3}, None, limit=2) == [Topic("b", 5), Topic("c", 3)]


def test_a_term_inside_one_already_shown_is_not_shown_again() -> None:
    shown = rising({"exports migration": 9, "exports": 9, "migration": 8}, {})
    assert [topic.term for topic in shown] == ["exports migration"]


def test_odd_texts_give_no_topics_rather_than_a_crash() -> None:
    for texts in (
        [],
        ["🎉🎉🎉"] * 5,
        ["<https://a.example>"] * 5,
        ["漢字かな交じり文"] * 5,
        ["x" * 40_000],
    ):
        assert isinstance(counts(texts), dict)


def test_the_sample_is_bounded_and_the_same_in_any_order() -> None:
    messages = [
        (f"{1_700_000_000 + n}.000100", f"message {n} " + "w" * (n % 50)) for n in range(5000)
    ]
    forward, backward = Sample(chars=5_000), Sample(chars=5_000)
    for ts, text in messages:
        forward.add(ts, text)
    for ts, text in reversed(messages):
        backward.add(ts, text)
    assert forward.texts() == backward.texts()
    assert 4_000 < sum(map(len, forward.texts())) <= 5_000
    assert forward.seen == 5000


def test_a_sample_resumes_exactly_from_json() -> None:
    messages = [(f"{1_700_000_000 + n}.000100", f"message {n}") for n in range(3000)]
    whole, first = Sample(chars=2_000), Sample(chars=2_000)
    for ts, text in messages:
        whole.add(ts, text)
    for ts, text in messages[:1000]:
        first.add(ts, text)
    resumed = Sample.from_json(json.loads(json.dumps(first.to_json())))
    for ts, text in messages[1000:]:
        resumed.add(ts, text)
    assert resumed.to_json() == whole.to_json()
