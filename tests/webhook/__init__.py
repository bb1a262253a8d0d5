"""Tests of the web process: verification, routes and the request log."""
