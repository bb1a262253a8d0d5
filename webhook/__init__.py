"""The web process: `uvicorn webhook:app`."""

from sentry_sdk.integrations.starlette import StarletteIntegration

from jobs.config import get_settings
from jobs.logs import configure_logging
from jobs.sentry import init_sentry
from webhook.app import create_app

configure_logging(get_settings())
init_sentry(get_settings(), StarletteIntegration())
app = create_app()

__all__ = ["app", "create_app"]
