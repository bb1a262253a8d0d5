"""The digest pipeline: collect, summarize, render, deliver."""
