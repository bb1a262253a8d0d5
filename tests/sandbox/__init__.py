"""Tests of the sandbox: the Slack Web API simulator."""
