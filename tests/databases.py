"""A real PostgreSQL for tests: a throwaway cluster in a temporary directory, started as
an unprivileged user (the server refuses to run as root), on a free port."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time

from .servers import free_port


def _binary(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


INITDB, PG_CTL = _binary("initdb"), _binary("pg_ctl")


class PostgresServer:
    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="policyd-pg-")
        self.user = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self.dsn = f"host=127.0.0.1 port={self.port} user=policyd dbname=postgres"

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=120)

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            os.chmod(self.dir, 0o755)
            shutil.chown(self.dir, self.user)
        data = os.path.join(self.dir, "data")
        self._run(INITDB, "-D", data, "-U", "policyd", "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8")
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off " \
               "-c full_page_writes=off -c synchronous_commit=off"
        self._run(PG_CTL, "-D", data, "-o", opts, "-l", os.path.join(self.dir, "log"),
                  "-w", "-t", "60", "start")
        import psycopg
        end = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.dsn).close()
                return self
            except psycopg.OperationalError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        try:
            self._run(PG_CTL, "-D", os.path.join(self.dir, "data"), "-m", "immediate",
                      "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
