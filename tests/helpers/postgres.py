"""A throwaway PostgreSQL cluster for the test session.

initdb + pg_ctl into a temporary folder on a free port of 127.0.0.1, stopped at
the end. PostgreSQL refuses to run as root, so as root the cluster runs as the
unprivileged `postgres` user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def find_pg_bin() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresCluster:
    bin_dir: Path
    root: Path
    port: int
    run_as: str | None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _cmd(self, args: list[str]) -> list[str]:
        if self.run_as:
            return ["runuser", "-u", self.run_as, "--", *args]
        return args

    @classmethod
    def start(cls) -> PostgresCluster:
        bin_dir = find_pg_bin()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL binaries (initdb, pg_ctl) not found")
        root = Path(tempfile.mkdtemp(prefix="hearth-pg-"))
        run_as = None
        if os.geteuid() == 0:
            run_as = "postgres"
            pw = pwd.getpwnam(run_as)
            os.chown(root, pw.pw_uid, pw.pw_gid)
        cluster = cls(bin_dir, root, _free_port(), run_as)
        subprocess.run(cluster._cmd([
            str(bin_dir / "initdb"), "-D", str(cluster.data_dir), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--no-sync",
        ]), check=True, capture_output=True)
        opts = (f"-c listen_addresses=127.0.0.1 -p {cluster.port} -c unix_socket_directories={root} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        subprocess.run(cluster._cmd([
            str(bin_dir / "pg_ctl"), "-D", str(cluster.data_dir), "-l", str(root / "log"),
            "-o", opts, "-w", "start",
        ]), check=True, capture_output=True)
        return cluster

    def stop(self) -> None:
        subprocess.run(self._cmd([
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop",
        ]), capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
