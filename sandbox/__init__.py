"""Stand-ins for the outside world, for tests and `scripts/dev`: Redis, and later Slack and SMTP."""
