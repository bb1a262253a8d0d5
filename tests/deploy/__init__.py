"""The deployment files, checked for real: docker-compose.yml against the Compose Specification's
JSON schema, every process command against the Procfile, the Dockerfile with hadolint, the Slack
app manifest against what the code calls and handles, and each command run against a private
Redis until the healthcheck that watches it passes."""
