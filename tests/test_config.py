"""Configuration: every variable validated, bad values explained, secrets never echoed."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme

from jobs.celery import celery_config
from jobs.cli import main
from jobs.config import Settings, SmtpSettings
from jobs.errors import ConfigError
from tests.conftest import ROOT


def settings(**env: str) -> Settings:
    return Settings.from_env(env)


def test_defaults_follow_the_design() -> None:
    config = settings()
    assert config.redis.url == "redis://localhost:6379/0"
    assert config.slack_api_url == "https://slack.com/api/"
    assert str(config.schedules_file) == "schedules.yaml"
    assert (config.port, config.log_level, config.log_format) == (8000, "INFO", "text")
    assert config.smtp is None and config.trigger_token is None


def test_a_redis_url_that_is_not_one_says_what_is_wrong() -> None:
    with pytest.raises(ConfigError) as error:
        settings(REDIS_URL="foo")
    assert str(error.value) == (
        "REDIS_URL='foo' is not a Redis URL: expected "
        "redis://[:password@]host[:port][/db] or rediss://… for TLS"
    )


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("redis://:hunter2@host:notaport/0", "port that is not a number"),
        ("redis://:hunter2@host:6379/zero", "database after '/' must be a number"),
        ("rediss://:hunter2@host:6380?ssl_cert_reqs=maybe", "must be one of required, optional"),
    ],
)
def test_redis_url_errors_never_show_the_password(url: str, words: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings(REDIS_URL=url)
    assert words in str(error.value)
    assert "hunter2" not in str(error.value)
    assert ":***@host" in str(error.value)


def test_rediss_verifies_certificates_by_default() -> None:
    config = settings(REDIS_URL="rediss://:pw@redis.example:6380/0")
    assert config.redis.cert_reqs == ssl.CERT_REQUIRED
    assert config.redis.url.endswith("?ssl_cert_reqs=required")


@pytest.mark.parametrize("given", ["none", "CERT_NONE", "None"])
def test_rediss_with_a_self_signed_certificate_as_paas_give_it(given: str) -> None:
    config = settings(REDIS_URL=f"rediss://:pw@ec2.example:25061?ssl_cert_reqs={given}")
    assert config.redis.cert_reqs == ssl.CERT_NONE
    assert config.redis.url == "rediss://:pw@ec2.example:25061?ssl_cert_reqs=none"
    celery = celery_config(config)
    assert celery["broker_use_ssl"] == {"ssl_cert_reqs": ssl.CERT_NONE}
    assert celery["redis_backend_use_ssl"] == {"ssl_cert_reqs": ssl.CERT_NONE}
    assert celery["result_backend"] == config.redis.url


def test_celery_is_configured_for_safe_redelivery() -> None:
    celery = celery_config(settings())
    assert celery["task_serializer"] == "json" and celery["accept_content"] == ["json"]
    assert celery["task_acks_late"] and celery["task_reject_on_worker_lost"]
    assert celery["worker_prefetch_multiplier"] == 1
    assert celery["task_track_started"]
    assert celery["result_expires"] > 0
    visibility = celery["broker_transport_options"]["visibility_timeout"]
    assert visibility > celery["task_time_limit"]
    assert "broker_use_ssl" not in celery


def test_smtp_url_is_parsed_and_its_password_kept_out_of_repr() -> None:
    config = settings(SMTP_URL="smtp://mailer:s%40cret@mail.example:2525", EMAIL_FROM="d@x.org")
    assert config.smtp is not None
    assert (config.smtp.host, config.smtp.port, config.smtp.username) == (
        "mail.example",
        2525,
        "mailer",
    )
    assert config.smtp.password == "s@cret" and config.smtp.starttls
    assert "s@cret" not in repr(config)
    implicit = settings(SMTP_URL="smtps://mail.example", EMAIL_FROM="d@x.org").smtp
    assert implicit is not None and implicit.implicit_tls and implicit.port == 465


def test_plain_smtp_is_allowed_only_on_loopback() -> None:
    local = settings(SMTP_URL="smtp://127.0.0.1:1025?tls=off", EMAIL_FROM="d@x.org").smtp
    assert local is not None and not local.starttls
    with pytest.raises(ConfigError, match="only for a loopback host"):
        settings(SMTP_URL="smtp://u:pw@mail.example:25?tls=off", EMAIL_FROM="d@x.org")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SMTP_URL": "smtp://mail.example"}, "EMAIL_FROM is required when SMTP_URL is set"),
        ({"EMAIL_FROM": "not an address"}, "is not an email address"),
        ({"SMTP_URL": "http://mail.example", "EMAIL_FROM": "a@b.c"}, "is not an SMTP URL"),
        ({"PORT": "eighty"}, "PORT='eighty' is not a TCP port number"),
        ({"PORT": "70000"}, "is not a TCP port number"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD' must be one of DEBUG"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml' must be one of text, json"),
        ({"SLACK_BOT_TOKEN": "xoxp-user-token"}, "must be a bot token"),
        ({"SLACK_API_URL": "slack.com/api"}, "is not an http:// or https:// URL"),
        ({"PUBLIC_URL": "ftp://x"}, "is not an http:// or https:// URL"),
    ],
)
def test_bad_values_are_explained(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        Settings.from_env(env)


def test_the_bot_token_error_does_not_echo_the_token() -> None:
    with pytest.raises(ConfigError) as error:
        settings(SLACK_BOT_TOKEN="xoxp-user-token-value")
    assert "xoxp-user-token-value" not in str(error.value)


def test_api_url_gets_a_trailing_slash() -> None:
    assert settings(SLACK_API_URL="http://127.0.0.1:9000/api").slack_api_url == (
        "http://127.0.0.1:9000/api/"
    )


def test_secrets_lists_every_secret_value() -> None:
    config = settings(
        REDIS_URL="redis://:redispw@h:1/0",
        SLACK_SIGNING_SECRET="sign",
        SLACK_BOT_TOKEN="xoxb-tok",
        TRIGGER_TOKEN="trig",
        SMTP_URL="smtp://u:mailpw@m.example",
        EMAIL_FROM="a@b.c",
    )
    assert set(config.secrets) == {"redispw", "sign", "xoxb-tok", "trig", "mailpw"}


def test_cli_config_reports_bad_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from jobs.config import get_settings

    monkeypatch.setenv("REDIS_URL", "foo")
    get_settings.cache_clear()
    try:
        assert main(["config"]) == 1
    finally:
        get_settings.cache_clear()
    assert "REDIS_URL='foo' is not a Redis URL" in capsys.readouterr().err


def test_cli_config_hides_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from jobs.config import get_settings

    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret")
    monkeypatch.setenv("REDIS_URL", "redis://:redispw@127.0.0.1:1/0")
    get_settings.cache_clear()
    try:
        assert main(["config"]) == 0
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    assert "SLACK_BOT_TOKEN       (set)" in out
    assert "xoxb-very-secret" not in out and "redispw" not in out


def config_output(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str]
) -> str:
    """What `digests config` prints in exactly this environment (exit 0)."""
    from jobs.config import get_settings

    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SMTP_URL", "EMAIL_FROM"):
        monkeypatch.delenv(name, raising=False)
    for name in ("TRIGGER_TOKEN", "PUBLIC_URL", "SENTRY_DSN", "SCHEDULES_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        assert main(["config"]) == 0
    finally:
        get_settings.cache_clear()
    return capsys.readouterr().out


def test_cli_config_says_what_each_missing_value_leaves_undone_and_that_redis_is_down(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = config_output(monkeypatch, capsys, {"REDIS_URL": "redis://:redispw@127.0.0.1:1/0"})
    lines = out.splitlines()
    assert "problem: cannot reach Redis at redis://:***@127.0.0.1:1/0 (" in out
    for line in [
        "missing: SLACK_BOT_TOKEN is not set: nothing can be collected or posted",
        "missing: SMTP_URL is not set: email destinations fail",
        "missing: TRIGGER_TOKEN is not set: /triggers/* answer 503",
    ]:
        assert line in lines
    assert any(
        line.startswith("missing: SLACK_SIGNING_SECRET is not set: /slack/*") for line in lines
    )
    assert "redispw" not in out


def test_cli_config_with_everything_set_says_redis_answers_and_shows_no_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], redis_url: str
) -> None:
    secrets = {
        "SLACK_BOT_TOKEN": "xoxb-very-secret",
        "SLACK_SIGNING_SECRET": "signing-very-secret",
        "TRIGGER_TOKEN": "trigger-very-secret",
        "SENTRY_DSN": "https://sentrykey@sentry.example/1",
    }
    env = {
        **secrets,
        "REDIS_URL": redis_url,
        "SMTP_URL": "smtp://user:mailpw-secret@127.0.0.1:2525?tls=off",
        "EMAIL_FROM": "digests@example.com",
        "PUBLIC_URL": "https://digests.example.com/",
        "SCHEDULES_FILE": str(ROOT / "schedules.yaml"),
    }
    out = config_output(monkeypatch, capsys, env)
    assert f"ok: Redis answers at {redis_url}" in out.splitlines()
    assert "missing:" not in out and "problem:" not in out
    hidden = [*secrets.values(), "mailpw-secret", "sentrykey"]
    assert [value for value in hidden if value in out] == []


def test_cli_help_lists_its_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert "config" in capsys.readouterr().out


def test_smtp_cafile_names_a_certificate_to_trust(tmp_path: Path) -> None:
    cafile = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(cafile))
    url = f"smtp://u:hunter2@mail.example:587?cafile={cafile}"
    config = settings(SMTP_URL=url, EMAIL_FROM="d@x.org").smtp
    assert config is not None and config.cafile == cafile and config.starttls
    assert "hunter2" not in repr(config)
    assert SmtpSettings.from_url("smtp://mail.example").cafile is None


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda path: None, "is not a file"),
        (lambda path: path.mkdir(), "is not a file"),
        (lambda path: path.write_text("not a certificate"), "holds no readable PEM certificate"),
    ],
)
def test_a_bad_smtp_cafile_is_refused_without_showing_the_password(
    tmp_path: Path, make: Callable[[Path], object], words: str
) -> None:
    cafile = tmp_path / "ca.pem"
    make(cafile)
    with pytest.raises(ConfigError) as error:
        settings(SMTP_URL=f"smtps://u:hunter2@mail.example?cafile={cafile}", EMAIL_FROM="d@x.org")
    message = str(error.value)
    assert message.startswith("SMTP_URL='smtps://u:***@mail.example?cafile=") and words in message
    assert "hunter2" not in message


def test_a_misspelt_smtp_parameter_is_not_ignored() -> None:
    with pytest.raises(ConfigError, match="unknown parameter 'cafle'") as error:
        settings(SMTP_URL="smtp://u:hunter2@mail.example?cafle=/ca.pem", EMAIL_FROM="d@x.org")
    assert "hunter2" not in str(error.value)


@pytest.mark.parametrize(
    ("program", "command"),
    [
        ("web", ["uvicorn", "webhook:app", "--port", "0"]),
        ("celery", ["celery", "-A", "jobs", "worker"]),
    ],
)
def test_a_process_with_an_invalid_configuration_says_so_in_one_line_and_exits(
    program: str, command: list[str]
) -> None:
    env = {**os.environ, "REDIS_URL": "foo"}
    done = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"{program}: invalid configuration: REDIS_URL='foo' is not a Redis URL: expected "
        "redis://[:password@]host[:port][/db] or rediss://… for TLS"
    ]


@pytest.mark.parametrize("value", ["nocolon", ":password", "user:"])
def test_status_auth_is_user_and_password(value: str) -> None:
    with pytest.raises(ConfigError, match="STATUS_AUTH must be user:password"):
        Settings.from_env({"STATUS_AUTH": value})


def test_the_status_password_is_a_secret() -> None:
    settings = Settings.from_env({"STATUS_AUTH": "ops:pa:ss"})
    assert settings.status_auth == ("ops", "pa:ss") and "pa:ss" in settings.secrets
    assert "pa:ss" not in repr(settings)
