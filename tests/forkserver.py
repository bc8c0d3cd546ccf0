"""Serve the app in a child process that can be SIGKILLed and started again in milliseconds.

The parent imports everything once; each ``start`` line on stdin forks a child that builds
the app (its own engine and pool, nothing shared across the fork) and serves it with uvicorn
on the given port, and the parent prints the child's pid. The fault tests kill that child
mid-request, which is exactly a server process dying, without paying an interpreter start.
"""

from __future__ import annotations

import os
import sys

import uvicorn

import api.main  # noqa: F401  (imported before forking: the expensive part)


def serve(port: int) -> None:
    from api.main import create_app

    app = create_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def main() -> None:
    port = int(sys.argv[1])
    for line in sys.stdin:
        if line.strip() != "start":
            continue
        pid = os.fork()
        if pid == 0:
            try:
                serve(port)
            finally:
                os._exit(0)
        print(pid, flush=True)
        # Reap children that were killed, so they do not linger as zombies.
        while True:
            try:
                done, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if done == 0:
                break


if __name__ == "__main__":
    main()
