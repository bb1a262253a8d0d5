"""Every environment variable the service reads, validated in one place."""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from functools import cache
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from jobs.errors import ConfigError

# A Slack user ID, as ADMIN_USERS and a schedule's `owners` list them.
USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")

CERT_REQS = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
SMTP_PARAMETERS = ("tls", "cafile")


@dataclass(frozen=True)
class RedisSettings:
    """Where Redis is, and how to reach it over TLS (PaaS Redis often has a self-signed cert)."""

    url: str = field(repr=False)
    cert_reqs: ssl.VerifyMode | None = None

    @classmethod
    def from_url(cls, value: str) -> RedisSettings:
        parts = urlsplit(value)
        shown = mask_url(value)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(
                f"REDIS_URL={shown!r} is not a Redis URL: expected "
                "redis://[:password@]host[:port][/db] or rediss://… for TLS"
            )
        if parts.scheme != "unix" and not parts.hostname:
            raise ConfigError(f"REDIS_URL={shown!r} names no host")
        try:
            parts.port  # noqa: B018 - urlsplit validates the port lazily
        except ValueError:
            raise ConfigError(f"REDIS_URL={shown!r} has a port that is not a number") from None
        db = parts.path.lstrip("/")
        if parts.scheme != "unix" and db and not db.isdigit():
            raise ConfigError(f"REDIS_URL={shown!r}: the database after '/' must be a number")
        if parts.scheme != "rediss":
            return cls(url=value)
        query = dict(parse_qsl(parts.query))
        given = query.get("ssl_cert_reqs", "required")
        name = given.lower().removeprefix("cert_")
        if name not in CERT_REQS:
            raise ConfigError(
                f"REDIS_URL={shown!r}: ssl_cert_reqs={given!r} must be one of "
                "required, optional, none (none accepts a self-signed certificate)"
            )
        query["ssl_cert_reqs"] = name
        url = urlunsplit(parts._replace(query=urlencode(query)))
        return cls(url=url, cert_reqs=CERT_REQS[name])

    @property
    def ssl_options(self) -> dict[str, ssl.VerifyMode] | None:
        """Celery's `broker_use_ssl` / `redis_backend_use_ssl`, or None without TLS."""
        return None if self.cert_reqs is None else {"ssl_cert_reqs": self.cert_reqs}


@dataclass(frozen=True)
class SmtpSettings:
    """An SMTP relay: STARTTLS on smtp://, implicit TLS on smtps://, plain only on loopback."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    implicit_tls: bool = False
    starttls: bool = True
    cafile: Path | None = None

    @classmethod
    def from_url(cls, value: str) -> SmtpSettings:
        parts = urlsplit(value)
        shown = mask_url(value)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError(
                f"SMTP_URL={shown!r} is not an SMTP URL: expected "
                "smtp://user:pass@host:587 (STARTTLS) or smtps://user:pass@host:465"
            )
        try:
            port = parts.port or (465 if parts.scheme == "smtps" else 587)
        except ValueError:
            raise ConfigError(f"SMTP_URL={shown!r} has a port that is not a number") from None
        query = dict(parse_qsl(parts.query))
        unknown = sorted(query.keys() - SMTP_PARAMETERS)
        if unknown:
            raise ConfigError(
                f"SMTP_URL={shown!r}: unknown parameter {unknown[0]!r} "
                f"(known: {', '.join(SMTP_PARAMETERS)})"
            )
        tls = query.get("tls", "on")
        if tls not in ("on", "off"):
            raise ConfigError(f"SMTP_URL={shown!r}: tls must be 'on' or 'off', not {tls!r}")
        if tls == "off" and not is_loopback(parts.hostname):
            raise ConfigError(
                f"SMTP_URL={shown!r}: tls=off is allowed only for a loopback host, "
                "so that credentials and mail never cross a network in the clear"
            )
        cafile = Path(query["cafile"]) if "cafile" in query else None
        if cafile is not None:
            check_cafile(f"SMTP_URL={shown!r}", cafile)
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=parts.scheme == "smtps",
            starttls=parts.scheme == "smtp" and tls == "on",
            cafile=cafile,
        )


def check_cafile(name: str, cafile: Path) -> None:
    """Refuse at start-up a `cafile` that TLS would only reject at the first delivery."""
    if not cafile.is_file():
        raise ConfigError(f"{name}: cafile {str(cafile)!r} is not a file")
    try:
        ssl.create_default_context(cafile=cafile)
    except OSError:  # ssl.SSLError for text that is not PEM, PermissionError, …
        raise ConfigError(
            f"{name}: cafile {str(cafile)!r} holds no readable PEM certificate "
            "(the private CA's, or the server's own if it is self-signed)"
        ) from None


@dataclass(frozen=True)
class Settings:
    """The service's configuration, from the environment (12-factor)."""

    redis: RedisSettings
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_api_url: str = "https://slack.com/api/"
    smtp: SmtpSettings | None = None
    email_from: str | None = None
    trigger_token: str | None = field(default=None, repr=False)
    schedules_file: Path = Path("schedules.yaml")
    sentry_dsn: str | None = field(default=None, repr=False)
    sentry_environment: str | None = None
    public_url: str | None = None
    port: int = 8000
    log_level: str = "INFO"
    log_format: str = "text"
    llm_api_url: str | None = None
    llm_api_key: str | None = field(default=None, repr=False)
    llm_model: str = "gpt-4o-mini"
    llm_timeout: float = 20.0  # seconds for the whole answer; a local model may need more
    admin_users: frozenset[str] = frozenset()  # Slack user IDs who may operate every schedule
    status_auth: tuple[str, str] | None = field(default=None, repr=False)  # user, password

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        def get(name: str) -> str | None:
            value = environ.get(name, "").strip()
            return value or None

        token = get("SLACK_BOT_TOKEN")
        if token is not None and not token.startswith("xoxb-"):
            raise ConfigError("SLACK_BOT_TOKEN must be a bot token, starting with 'xoxb-'")
        public_url = get("PUBLIC_URL")
        llm_url = get("LLM_API_URL")
        smtp_url = get("SMTP_URL")
        email_from = get("EMAIL_FROM")
        if smtp_url and not email_from:
            raise ConfigError("EMAIL_FROM is required when SMTP_URL is set")
        if email_from and "@" not in parseaddr(email_from)[1]:
            raise ConfigError(f"EMAIL_FROM={email_from!r} is not an email address")
        return cls(
            redis=RedisSettings.from_url(get("REDIS_URL") or "redis://localhost:6379/0"),
            slack_signing_secret=get("SLACK_SIGNING_SECRET"),
            slack_bot_token=token,
            slack_api_url=http_url("SLACK_API_URL", get("SLACK_API_URL") or cls.slack_api_url),
            smtp=SmtpSettings.from_url(smtp_url) if smtp_url else None,
            email_from=email_from,
            trigger_token=get("TRIGGER_TOKEN"),
            schedules_file=Path(get("SCHEDULES_FILE") or "schedules.yaml"),
            sentry_dsn=get("SENTRY_DSN"),
            sentry_environment=get("SENTRY_ENVIRONMENT"),
            public_url=http_url("PUBLIC_URL", public_url) if public_url else None,
            port=port_number(get("PORT") or "8000"),
            log_level=choice("LOG_LEVEL", (get("LOG_LEVEL") or "INFO").upper(), LOG_LEVELS),
            log_format=choice("LOG_FORMAT", (get("LOG_FORMAT") or "text").lower(), LOG_FORMATS),
            llm_api_url=checked("LLM_API_URL", llm_url) if llm_url else None,
            llm_api_key=get("LLM_API_KEY"),
            llm_model=get("LLM_MODEL") or cls.llm_model,
            llm_timeout=seconds("LLM_TIMEOUT", get("LLM_TIMEOUT") or str(cls.llm_timeout)),
            admin_users=user_ids("ADMIN_USERS", get("ADMIN_USERS") or ""),
            status_auth=credentials("STATUS_AUTH", get("STATUS_AUTH")),
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never reach logs, task results or error reports."""
        values = (
            self.slack_signing_secret,
            self.slack_bot_token,
            self.trigger_token,
            self.llm_api_key,
            self.status_auth[1] if self.status_auth else None,
            self.smtp.password if self.smtp else None,
            urlsplit(self.redis.url).password,
            urlsplit(self.llm_api_url or "").password,
        )
        return tuple(v for v in values if v)


def gaps(settings: Settings) -> list[str]:
    """What each unset variable leaves undone, one line each, for `digests config`."""
    unset = {
        "SLACK_BOT_TOKEN": (settings.slack_bot_token, "nothing can be collected or posted"),
        "SLACK_SIGNING_SECRET": (
            settings.slack_signing_secret,
            "/slack/* refuse every request (503), so Slack's events and /digest fail",
        ),
        "SMTP_URL": (settings.smtp, "email destinations fail"),
        "TRIGGER_TOKEN": (settings.trigger_token, "/triggers/* answer 503"),
        "PUBLIC_URL": (
            settings.public_url,
            "mails unsubscribe by a mailto: to EMAIL_FROM, and runs show no status URL",
        ),
        "SENTRY_DSN": (settings.sentry_dsn, "errors are only logged, not reported"),
    }
    return [f"{name} is not set: {effect}" for name, (value, effect) in unset.items() if not value]


def http_url(name: str, value: str) -> str:
    """An http(s) base URL, ending in '/' so that method names append cleanly."""
    checked(name, value)
    return value if value.endswith("/") else value + "/"


def checked(name: str, value: str) -> str:
    """An http(s) URL, as given (an Azure OpenAI URL ends in its `?api-version=`)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name}={mask_url(value)!r} is not an http:// or https:// URL")
    return value


def port_number(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ConfigError(f"PORT={value!r} is not a TCP port number (1-65535)")
    return int(value)


def credentials(name: str, value: str | None) -> tuple[str, str] | None:
    """`user:password`, both non-empty (the password may hold colons)."""
    if value is None:
        return None
    user, colon, password = value.partition(":")
    if not colon or not user or not password:
        raise ConfigError(f"{name} must be user:password, both non-empty")
    return user, password


def user_ids(name: str, value: str) -> frozenset[str]:
    """Comma-separated Slack user IDs, like U0123ABCD,U0456EFGH."""
    ids = frozenset(part.strip() for part in value.split(",") if part.strip())
    wrong = sorted(user for user in ids if not USER_ID.fullmatch(user))
    if wrong:
        raise ConfigError(f"{name}: {wrong[0]!r} is not a Slack user ID like U0123ABCD")
    return ids


def seconds(name: str, value: str) -> float:
    """A positive number of seconds, at most an hour."""
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not 0 < number <= 3600:
        raise ConfigError(f"{name}={value!r} is not a number of seconds in (0, 3600]")
    return number


def choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} must be one of {', '.join(allowed)}")
    return value


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def mask_url(value: str) -> str:
    """The URL with its password replaced, safe to show in an error or a log."""
    parts = urlsplit(value)
    if not parts.password:
        return value
    user = quote(parts.username or "")
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


@cache
def get_settings() -> Settings:
    """The process's settings, read once from `os.environ`."""
    return Settings.from_env(os.environ)


def settings_or_exit(program: str) -> Settings:
    """The settings, or an exit with one line saying what is wrong: a process must not start on
    a bad configuration, and a traceback would bury the line that matters."""
    try:
        return get_settings()
    except ConfigError as error:
        raise SystemExit(f"{program}: invalid configuration: {error}") from None
