"""A Slack Web API simulator: the methods a digest uses, answered from a `Workspace` in Slack's own
shapes over real HTTP, with switches for what real Slack does to clients (429s, 5xx, slow answers)
and a record of every post. `slack_sdk.WebClient(base_url=simulator.url)` talks to it unchanged.
"""

from __future__ import annotations

from sandbox.slack.server import SlackSimulator

__all__ = ["SlackSimulator"]
