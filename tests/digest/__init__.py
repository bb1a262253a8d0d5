"""Tests of the digest: summarize, render, mail, and whole runs."""
