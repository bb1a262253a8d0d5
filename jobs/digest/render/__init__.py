"""Render: a digest as Slack Block Kit messages and as an email, from one outline."""
