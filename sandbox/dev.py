"""`scripts/dev`: every process of the Procfile on this machine, on an embedded Redis by default."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import FrameType

from sandbox.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


def main() -> int:
    env = dict(os.environ)
    port = int(env.get("PORT", "8000"))
    if not port_is_free(port):
        print(f"scripts/dev: port {port} is taken; run with PORT=<another port>", file=sys.stderr)
        return 1
    redis = None
    if not env.get("REDIS_URL"):
        redis = RedisServer().start()
        env["REDIS_URL"] = redis.url
        print(f"==> Redis (embedded, in memory) at {redis.url}", flush=True)
    if not env.get("SLACK_SIGNING_SECRET"):
        print("==> SLACK_SIGNING_SECRET is not set: /slack/* answer 503 until it is", flush=True)
    # The Procfile's commands live in this virtualenv.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    print(f"==> web at http://127.0.0.1:{port}/healthz; Ctrl-C stops everything", flush=True)
    honcho = [str(Path(sys.executable).parent / "honcho"), "start", "-f", "Procfile"]
    processes = subprocess.Popen([*honcho, "-p", str(port)], cwd=ROOT, env=env)

    def stop(signum: int, frame: FrameType | None) -> None:
        processes.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            try:
                return processes.wait()
            except KeyboardInterrupt:
                continue  # honcho got the same Ctrl-C and is stopping its children
    finally:
        if redis:
            redis.stop()


if __name__ == "__main__":
    sys.exit(main())
