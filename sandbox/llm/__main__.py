"""`python -m sandbox.llm`: the LLM stub on a fixed port for `scripts/dev`, in its own process."""

from __future__ import annotations

import argparse

import uvicorn

from sandbox.llm.server import LLMStub
from sandbox.server import HOST


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.llm", description="Serve a stub chat completions endpoint."
    )
    parser.add_argument("--port", type=int, default=8092)
    parser.add_argument("--host", default=HOST)
    options = parser.parse_args(argv)
    stub = LLMStub(options.port)
    print(f"LLM_API_URL=http://{options.host}:{options.port}/v1", flush=True)
    uvicorn.run(stub.app, host=options.host, port=options.port, log_level="warning")


if __name__ == "__main__":
    main()
