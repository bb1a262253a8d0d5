"""`python -m sandbox.slack`: the simulator on a fixed port for `scripts/dev`, in its own
process."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import uvicorn

from sandbox.server import HOST
from sandbox.slack import SlackSimulator
from sandbox.workspace import generate


def main(argv: list[str] | None = None) -> None:
    """A demo workspace with a week of history up to now."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.slack", description="Serve a simulated Slack Web API."
    )
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--days", type=float, default=7, help="days of history up to now")
    parser.add_argument("--token", help="the bot token to accept (default: the workspace's)")
    options = parser.parse_args(argv)
    end = datetime.now(UTC)
    workspace = generate(options.seed, start=end - timedelta(days=options.days), end=end)
    if options.token:
        workspace.bot_token = options.token
    simulator = SlackSimulator(workspace)
    print(f"SLACK_API_URL=http://{options.host}:{options.port}/api/", flush=True)
    print(f"SLACK_BOT_TOKEN={workspace.bot_token}", flush=True)
    uvicorn.run(simulator.app, host=options.host, port=options.port, log_level="warning")


if __name__ == "__main__":
    main()
