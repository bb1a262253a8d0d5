"""deploy/slack-app-manifest.yaml against the code: the scopes are exactly those of the methods
jobs/ and webhook/ call and the events the worker handles, and the URLs are the app's routes."""

from __future__ import annotations

import ast
from urllib.parse import urlsplit

from slack_sdk import WebClient
from slack_sdk.web.base_client import BaseClient

from jobs.slack.events import HANDLERS
from tests.conftest import ROOT
from tests.deploy.helpers import manifest, python_files, routes
from webhook.commands import slack_commands
from webhook.events import slack_events
from webhook.interactions import slack_interactions

# Bot scopes of each Web API method the code calls (docs.slack.dev/reference/methods). The
# conversations.* methods read public and private channels, so both families are needed.
METHOD_SCOPES: dict[str, frozenset[str]] = {
    "auth.test": frozenset(),
    "chat.postMessage": frozenset({"chat:write"}),
    "conversations.history": frozenset({"channels:history", "groups:history"}),
    "conversations.replies": frozenset({"channels:history", "groups:history"}),
    "conversations.info": frozenset({"channels:read", "groups:read"}),
    "conversations.list": frozenset({"channels:read", "groups:read"}),
    "conversations.members": frozenset({"channels:read", "groups:read"}),
    "views.publish": frozenset(),
    "views.open": frozenset(),
    "users.info": frozenset({"users:read"}),
    "users.list": frozenset({"users:read"}),
}
# Scopes an Events API subscription needs; the others need only the subscription itself.
EVENT_SCOPES: dict[str, frozenset[str]] = {
    "app_mention": frozenset({"app_mentions:read"}),
    "app_home_opened": frozenset(),
    "app_uninstalled": frozenset(),
    "tokens_revoked": frozenset(),
}
PLACEHOLDER_HOST = "digests.example.com"


# The module that calls Slack's Web API, and its functions that take the method's name; the
# shared pages (`SharedPages.pages` and `.page`, on an object named `shared`) take it too, and
# pass it on to `call`.
API = ROOT / "jobs/slack/api.py"
WRAPPERS = ("call", "pages")
SHARING = ROOT / "jobs/slack/sharing.py"
SHARED = ("pages", "page")


def shared(value: ast.expr) -> bool:
    """Whether the object is a `SharedPages`, as the code names them (`shared`, `self.shared`)."""
    name = value.attr if isinstance(value, ast.Attribute) else getattr(value, "id", "")
    return name == "shared"


def web_api_methods() -> set[str]:
    """Every Slack Web API method jobs/ and webhook/ call: through `jobs.slack.api`'s `call` or
    `pages`, `SharedPages`, `WebClient.api_call`, or a WebClient method such as
    `client.chat_postMessage`."""
    client_methods = {
        name
        for name in dir(WebClient)
        if not name.startswith("_") and not hasattr(BaseClient, name)
    }
    methods = set()
    for path in python_files():
        tree = ast.parse(path.read_text())
        # Names under which this module knows the `call` wrapper.
        wrappers = set(WRAPPERS) if path == API else set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "jobs.slack.api":
                wrappers |= {a.asname or a.name for a in node.names if a.name in WRAPPERS}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if isinstance(func, ast.Name) and func.id in wrappers:
                argument = node.args[1] if len(node.args) > 1 else None
            elif isinstance(func, ast.Attribute) and (
                func.attr == "api_call" or (func.attr in SHARED and shared(func.value))
            ):
                argument = node.args[0] if node.args else None
            elif isinstance(func, ast.Attribute) and func.attr in client_methods:
                methods.add(func.attr.replace("_", "."))
                continue
            else:
                continue
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                methods.add(argument.value)
            else:
                # Only the wrapper itself may pass on a method it was given.
                inside_wrapper = path in (API, SHARING)
                assert inside_wrapper and isinstance(argument, ast.Name), (
                    f"{where}: cannot tell which Slack method this calls"
                )
    return methods


def test_the_code_calls_only_methods_whose_scopes_are_known() -> None:
    called = web_api_methods()
    assert {"conversations.history", "chat.postMessage"} <= called, "the scan found too little"
    unknown = called - METHOD_SCOPES.keys()
    assert not unknown, f"add the bot scopes of {sorted(unknown)} to METHOD_SCOPES"
    unused = METHOD_SCOPES.keys() - called
    assert not unused, f"{sorted(unused)} are no longer called: remove them"


def test_manifest_asks_for_exactly_the_scopes_the_code_needs() -> None:
    needed = set().union(*(METHOD_SCOPES[method] for method in web_api_methods()))
    needed |= set().union(*(EVENT_SCOPES[event] for event in HANDLERS))
    if slack_commands in routes():
        needed.add("commands")
    granted = manifest()["oauth_config"]["scopes"]["bot"]
    assert len(granted) == len(set(granted)), "a scope is listed twice"
    assert set(granted) == needed
    assert "user" not in manifest()["oauth_config"]["scopes"], "the app needs no user token"


def test_manifest_subscribes_to_exactly_the_events_the_worker_handles() -> None:
    assert EVENT_SCOPES.keys() == HANDLERS.keys(), "say which scope each new event needs"
    events = manifest()["settings"]["event_subscriptions"]
    assert sorted(events["bot_events"]) == sorted(HANDLERS)
    assert "user_events" not in events


def test_manifest_request_urls_are_the_apps_routes_on_a_placeholder_host() -> None:
    found = routes()
    events_url = urlsplit(manifest()["settings"]["event_subscriptions"]["request_url"])
    assert (events_url.scheme, events_url.hostname) == ("https", PLACEHOLDER_HOST)
    assert events_url.path == found[slack_events].path
    assert "POST" in (found[slack_events].methods or set())
    (command,) = manifest()["features"]["slash_commands"]
    assert command["command"] == "/digest"
    command_url = urlsplit(command["url"])
    assert (command_url.scheme, command_url.hostname) == ("https", PLACEHOLDER_HOST)
    assert command_url.path == found[slack_commands].path
    assert "POST" in (found[slack_commands].methods or set())
    interactivity = manifest()["settings"]["interactivity"]
    clicks_url = urlsplit(interactivity["request_url"])
    assert interactivity["is_enabled"] is True
    assert (clicks_url.scheme, clicks_url.hostname) == ("https", PLACEHOLDER_HOST)
    assert clicks_url.path == found[slack_interactions].path
    assert manifest()["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest()["settings"]["socket_mode_enabled"] is False
    assert "bot_user" in manifest()["features"], "a bot token needs a bot user"
