"""Private PostgreSQL clusters the tests may stop, start and replicate at will.

The machine's server is shared, so tests that take a store down start their own: ``initdb``
into a temporary directory, on a free port, from the PostgreSQL binaries on the machine
(``/usr/lib/postgresql/*/bin``, or ``PG_BIN``). The server refuses to run as root, so as root
the binaries run as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.live import free_port


def pg_bin() -> Path | None:
    """The directory of initdb/pg_ctl/pg_basebackup: ``PG_BIN``, the machine's PostgreSQL,
    or the binaries the ``pgserver`` wheel ships; None when there are none."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.origin is not None:
        wheel = Path(spec.origin).parent / "pginstall" / "bin"
        if (wheel / "pg_basebackup").exists():
            return wheel
    return None


def _as_server_user(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", "postgres", "--", *args]


@dataclass
class Cluster:
    """One PostgreSQL server on 127.0.0.1:port with trust auth, data in a temp directory."""

    bin: Path
    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cityscore-pg-")))

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            _as_server_user([str(self.bin / args[0]), *args[1:]]),
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
        )

    def _own(self) -> None:
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            for path in (self.root, *self.root.rglob("*")):
                os.chown(path, user.pw_uid, user.pw_gid)

    def init(self) -> Cluster:
        self._own()
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\nfsync = off\n"
                "wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n"
            )
        with open(self.data / "pg_hba.conf", "a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        return self

    def replica(self) -> Cluster:
        """A streaming replica of this (running) cluster: pg_basebackup -R, its own port."""
        standby = Cluster(self.bin)
        standby._own()
        standby._run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
            "-D", str(standby.data), "-R", "-X", "stream",
        )  # fmt: skip
        with open(standby.data / "postgresql.conf", "a") as conf:
            conf.write(f"port = {standby.port}\nunix_socket_directories = '{standby.root}'\n")
        return standby

    def start(self) -> Cluster:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = subprocess.run(
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
                check=False,
            )
            if done.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"PostgreSQL on port {self.port} did not become ready")
