"""Slack: the Web API client and the worker side of events and the /digest command."""
