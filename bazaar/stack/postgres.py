"""Postgres for the cluster profile (Debian's `postgresql` package): the metastore's database and
Dagster's instance storage, each a database of its own owned by the role `bazaar`.

The cluster is made with `initdb` on the first start, under the stack's home, with password
authentication (scram) over TCP on the stack's host only; no Unix socket.  Postgres refuses to run
as root, so as root it runs in a user namespace of its own in which it is an ordinary user (the
files stay the caller's): the same process, the same pid, no second account.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psycopg2
from psycopg2 import sql

from bazaar.stack.service import Service, ServiceError

ROLE = "bazaar"
DATABASES = ("metastore", "dagster")


def postgres_bin() -> Path:
    """Debian's server binaries (/usr/lib/postgresql/VERSION/bin), the newest installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise ServiceError("Postgres is not installed: run `make install-cluster` (Debian's `postgresql`)")
    return found[-1].parent


def as_ordinary_user(cmd: list[str]) -> list[str]:
    """`cmd` as is, or, for root, in a user namespace where it runs as uid 1000 (postgres and initdb
    refuse root); `unshare` execs it, so its pid is the server's."""
    if os.geteuid() != 0:
        return cmd
    unshare = shutil.which("unshare")
    if unshare is None:
        raise ServiceError("`unshare` (util-linux) is needed to run Postgres as root")
    probe = subprocess.run([unshare, "--user", "--map-user=1000", "--map-group=1000", "true"], capture_output=True,
                           text=True)
    if probe.returncode != 0:
        raise ServiceError(f"Postgres refuses root, and this root may not make a user namespace to run it in "
                           f"({probe.stderr.strip()}; a container's seccomp profile forbids it): run the cluster "
                           f"profile as an ordinary user")
    return [unshare, "--user", "--map-user=1000", "--map-group=1000", *cmd]


class PostgresService(Service):
    port_settings = ('postgres_port',)
    name = "postgres"
    startup_timeout = 60.0

    @property
    def address(self) -> str:
        return f"postgresql://{self.local.host}:{self.local.postgres_port}"

    @property
    def cluster_dir(self) -> Path:
        return self.data_dir / "data"

    def prepare(self) -> None:
        """initdb on the first start, into a folder of its own renamed into place once it succeeded:
        initdb writes PG_VERSION first, so a run cut short must never be taken for a cluster."""
        if (self.cluster_dir / "PG_VERSION").exists():
            return
        fresh = self.data_dir / "data.initdb"
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.rmtree(self.cluster_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pwfile = self.data_dir / "initdb-password"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.stack.postgres_password + "\n")
        try:
            out = subprocess.run(as_ordinary_user([
                str(postgres_bin() / "initdb"), "-D", str(fresh), "-U", ROLE, f"--pwfile={pwfile}",
                "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C"]), capture_output=True, text=True, timeout=300)
        finally:
            pwfile.unlink(missing_ok=True)
        if out.returncode != 0:
            raise ServiceError(f"initdb failed:\n{(out.stdout + out.stderr)[-3000:]}")
        if self.local.host not in ("127.0.0.1", "localhost", "::1"):  # initdb admits only the loopback
            with open(fresh / "pg_hba.conf", "a") as hba:
                hba.write(f"host all {ROLE} {self.local.host}/32 scram-sha-256\n")
        fresh.rename(self.cluster_dir)

    def command(self) -> list[str]:
        s = self.local
        return as_ordinary_user([
            str(postgres_bin() / "postgres"), "-D", str(self.cluster_dir), "-c", f"listen_addresses={s.host}",
            "-p", str(s.postgres_port), "-c", "unix_socket_directories=", "-c", "max_connections=200"])

    def connect(self, database: str = "postgres"):
        return psycopg2.connect(host=self.local.host, port=self.local.postgres_port, user=ROLE,
                                password=self.stack.postgres_password, dbname=database, connect_timeout=3)

    def healthy(self) -> bool:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                return cur.fetchone() == (1,)
        finally:
            conn.close()

    def wait_healthy(self, proc=None) -> None:
        try:
            super().wait_healthy(proc)
        except ServiceError:
            try:
                self.connect().close()
            except psycopg2.OperationalError as exc:
                if "password authentication failed" in str(exc):
                    raise ServiceError(
                        f"Postgres refused the password of role {ROLE!r}: its cluster under {self.cluster_dir} was "
                        f"made with another one. Set BAZAAR_POSTGRES_PASSWORD to that one, or remove "
                        f"{self.data_dir} (its databases go with it)") from exc
            raise

    def after_start(self) -> None:
        """The metastore's and Dagster's databases, made once."""
        conn = self.connect()
        conn.autocommit = True  # CREATE DATABASE runs outside a transaction
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT datname FROM pg_database")
                have = {name for (name,) in cur.fetchall()}
                for db in DATABASES:
                    if db not in have:
                        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
        finally:
            conn.close()

    def jdbc_url(self, database: str) -> str:
        return f"jdbc:postgresql://{self.local.host}:{self.local.postgres_port}/{database}"
