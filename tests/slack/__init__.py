"""Tests of the worker side of Slack: events and slash commands."""
