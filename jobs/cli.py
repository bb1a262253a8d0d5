"""The `digests` command line (also `python -m jobs`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from jobs.config import ConfigError, Settings, get_settings, mask_url


def show_config(settings: Settings) -> list[str]:
    """The configuration, one `NAME value` a line, with secrets shown only as set or not."""

    def secret(value: object) -> str:
        return "(set)" if value else "(not set)"

    smtp = settings.smtp
    return [
        f"REDIS_URL             {mask_url(settings.redis.url)}",
        f"SLACK_SIGNING_SECRET  {secret(settings.slack_signing_secret)}",
        f"SLACK_BOT_TOKEN       {secret(settings.slack_bot_token)}",
        f"SLACK_API_URL         {settings.slack_api_url}",
        f"SMTP_URL              {f'{smtp.host}:{smtp.port}' if smtp else '(not set)'}",
        f"EMAIL_FROM            {settings.email_from or '(not set)'}",
        f"TRIGGER_TOKEN         {secret(settings.trigger_token)}",
        f"SCHEDULES_FILE        {settings.schedules_file}",
        f"SENTRY_DSN            {secret(settings.sentry_dsn)}",
        f"PUBLIC_URL            {settings.public_url or '(not set)'}",
        f"PORT                  {settings.port}",
        f"LOG_LEVEL             {settings.log_level}",
        f"LOG_FORMAT            {settings.log_format}",
    ]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="digests", description="Slack Digests: scheduled digests of Slack channel activity."
    )
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser(
        "config",
        help="check the environment and show the configuration (secrets hidden)",
        description="Read every environment variable the service uses and report bad values.",
    )
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "config":
        try:
            print("\n".join(show_config(get_settings())))
        except ConfigError as error:
            print(f"digests: {error}", file=sys.stderr)
            return 1
    return 0
