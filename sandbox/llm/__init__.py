"""A stub of an OpenAI-compatible chat completions endpoint, for tests and `scripts/dev`."""

from sandbox.llm.server import Faults, LLMStub

__all__ = ["Faults", "LLMStub"]
