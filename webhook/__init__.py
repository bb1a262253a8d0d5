"""The web process: `uvicorn webhook:app`."""

from sentry_sdk.integrations.starlette import StarletteIntegration

from jobs.config import settings_or_exit
from jobs.logs import configure_logging
from jobs.sentry import init_sentry
from webhook.app import create_app

settings = settings_or_exit("web")
configure_logging(settings)
init_sentry(settings, StarletteIntegration())
app = create_app(settings)

__all__ = ["app", "create_app"]
