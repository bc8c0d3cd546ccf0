"""CPU and memory meters over a server's process tree, read from /proc."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from bench.loadgen import LoadResult, run_load
from bench.processes import Server, cpu_ticks, descendants, status_kb


class CpuMeter:
    """CPU used by a server's process tree and by this client (and its children, e.g. psql)."""

    def __init__(self, server: Server | None) -> None:
        self.pids = descendants(server.proc.pid) if server is not None else []
        self.text = ""
        self.server_s = 0.0

    @staticmethod
    def _client() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def __enter__(self) -> CpuMeter:
        self._server0, self._client0 = cpu_ticks(self.pids), self._client()
        self._wall0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = max(time.perf_counter() - self._wall0, 1e-9)
        self.server_s = (cpu_ticks(self.pids) - self._server0) / os.sysconf("SC_CLK_TCK")
        client_s = self._client() - self._client0
        server = f"server CPU {self.server_s / wall * 100:.0f}% of a core, " if self.pids else ""
        self.text = f"{server}client CPU {client_s / wall * 100:.0f}%"


def measured_load(
    server: Server, label: str, url_of: Callable[[int], str], **kwargs: Any
) -> LoadResult:
    """run_load, noting the CPU the server tree and this client used meanwhile."""
    with CpuMeter(server) as meter:
        result = run_load(label, url_of, **kwargs)
    per_request = meter.server_s / result.requests * 1000 if result.requests else 0.0
    result.extra = f"{meter.text}; server {per_request:.1f} ms CPU/request"
    return result


class RssSampler:
    """Samples VmRSS of a process tree every 50 ms in a thread."""

    def __init__(self, root: int) -> None:
        self.pids = descendants(root)
        self.baseline = {pid: status_kb(pid, "VmRSS") for pid in self.pids}
        self.peak: dict[int, int] = dict(self.baseline)
        self.peak_total = sum(self.baseline.values())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.hwm: dict[int, int] = {}

    def _loop(self) -> None:
        while not self._stop.is_set():
            total = 0
            for pid in self.pids:
                kb = status_kb(pid, "VmRSS")
                total += kb
                self.peak[pid] = max(self.peak.get(pid, 0), kb)
            self.peak_total = max(self.peak_total, total)
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.hwm = {pid: status_kb(pid, "VmHWM") for pid in self.pids}

    def worker_peak(self) -> tuple[int, int, int]:
        """(pid, baseline kB, peak kB) of the process whose RSS grew most (the one serving)."""
        pid = max(self.pids, key=lambda p: self.peak.get(p, 0) - self.baseline.get(p, 0))
        return pid, self.baseline.get(pid, 0), max(self.peak.get(pid, 0), self.hwm.get(pid, 0))
