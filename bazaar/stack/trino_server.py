"""Trino, from the trino-server tarball on Maven Central, with a `hive` catalog
on the metastore reading the warehouse through Hadoop's file systems
(`fs.hadoop.enabled`, so Spark's `file:/`, `hdfs://` and `s3a://` locations work).

Only the `hive` and `password-authenticators` plugins are kept from the tarball.  Clients reach it
over HTTPS with a password (`bazaar.trino_security`: the owner writes, the reader reads).
Trino runs on the newer JDK installed beside the default java; the health check is `SELECT 1`
over PyHive, as the reader.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from bazaar.settings import StackSettings, private_file, private_write
from bazaar.stack import artifacts
from bazaar.stack.java import find_java_home
from bazaar.stack.prometheus import jmx_agent
from bazaar.stack.service import Service, ServiceError
from bazaar.trino_security import ensure_keystore, write_auth
from orchestration.warehouse import connect

MIN_JAVA = 24  # Trino 476's requirement
PLUGINS = ("hive", "password-authenticators")  # the catalog, and the password file's authenticator


def trino_home(settings: StackSettings) -> Path:
    """The unpacked server (bin, lib and the `PLUGINS`), fetched and prepared once per version."""
    dest = settings.cache / f"trino-server-{settings.trino_version}"
    root = dest / f"trino-server-{settings.trino_version}"
    if artifacts.is_complete(dest) and all((root / "plugin" / p).is_dir() for p in PLUGINS):
        return root
    shutil.rmtree(dest, ignore_errors=True)  # unpacked by an older Bazaar, which kept fewer plugins
    archive = artifacts.fetch(settings.maven_repo, "io.trino", "trino-server", settings.trino_version, "tar.gz",
                              f"fetching Trino {settings.trino_version} server")
    artifacts.unpack(archive, dest, f"unpacking Trino {settings.trino_version}")
    for plugin in (root / "plugin").iterdir():
        if plugin.name not in PLUGINS:
            shutil.rmtree(plugin)
    artifacts.mark_complete(dest)
    return root


class TrinoService(Service):
    port_settings = ('trino_port', 'trino_internal_port', 'trino_metrics_port')
    name = "trino"
    startup_timeout = 180.0

    @property
    def address(self) -> str:
        return f"https://{self.stack.trino.trino_host}:{self.stack.trino.trino_port}"

    def prepare(self) -> None:
        s, endpoints = self.local, self.stack
        self.java_home = find_java_home(MIN_JAVA, s.trino_java_home)
        self.server = trino_home(s)
        etc = self.data_dir / "etc"
        (etc / "catalog").mkdir(parents=True, exist_ok=True)
        # clients: HTTPS with a password, checked against the stack's files; Trino's own calls: HTTP on
        # the internal port, signed with a secret of its own (it takes no client's password)
        try:
            keystore, keystore_password = ensure_keystore(self.java_home / "bin" / "keytool", self.stack.trino_tls,
                                                          [s.host])
        except ValueError as exc:  # a keystore its password no longer opens
            raise ServiceError(str(exc)) from None
        trino = self.stack.trino
        write_auth(etc, (trino.trino_owner_user, trino.trino_owner_password.get_secret_value()),
                   (trino.trino_user, trino.trino_password.get_secret_value()))
        shared = private_file(self.data_dir / "internal-secret", lambda: secrets.token_urlsafe(48),
                              lambda text: len(text) >= 32)
        files = {
            "node.properties": [
                "node.environment=bazaar", "node.id=bazaar-local", f"node.data-dir={self.data_dir / 'data'}",
                f"node.bind-ip={s.host}", f"node.internal-address={s.host}",
            ],
            "jvm.config": [
                "-server", f"-Xmx{s.trino_heap}", "-Duser.timezone=UTC", "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError",
                "-Djdk.attach.allowAttachSelf=true",
                jmx_agent(self.stack, "trino", s.trino_metrics_port, self.data_dir),
            ],
            "config.properties": [
                "coordinator=true", "node-scheduler.include-coordinator=true",
                f"http-server.http.port={s.trino_internal_port}", f"discovery.uri=http://{s.host}:{s.trino_internal_port}",
                "http-server.https.enabled=true", f"http-server.https.port={s.trino_port}",
                f"http-server.https.keystore.path={keystore}", f"http-server.https.keystore.key={keystore_password}",
                "http-server.authentication.type=PASSWORD", "http-server.authentication.allow-insecure-over-http=false",
                f"internal-communication.shared-secret={shared}",
                f"plugin.dir={self.server / 'plugin'}",
                f"query.max-memory={s.trino_query_memory}", f"query.max-memory-per-node={s.trino_query_memory}",
                # a report grouping every player state of 1M trades needs more than memory allows: spill
                "spill-enabled=true", f"spiller-spill-path={self.data_dir / 'spill'}",
            ],
            "log.properties": ["io.trino=INFO"],
            "catalog/hive.properties": [
                "connector.name=hive", f"hive.metastore.uri={endpoints.metastore_uri}",
                "fs.hadoop.enabled=true", "hive.non-managed-table-writes-enabled=true",
                "hive.storage-format=PARQUET", "hive.timestamp-precision=MICROSECONDS",
            ],
        }
        for name, lines in files.items():  # config.properties holds the keystore's and the internal secret
            private_write(etc / name, "\n".join(lines) + "\n")

    def environment(self) -> dict[str, str]:
        return {"JAVA_HOME": str(self.java_home), "PATH": f"{self.java_home / 'bin'}:{os.environ.get('PATH', '')}"}

    def command(self) -> list[str]:
        return [str(self.server / "bin" / "launcher"), "run", "--etc-dir", str(self.data_dir / "etc"),
                "--data-dir", str(self.data_dir / "data")]

    def healthy(self) -> bool:
        conn = connect(self.stack.trino)
        try:
            cur = conn.cursor()
            cur.execute("SELECT 1")
            if cur.fetchall() != [(1,)]:
                return False
            cur.execute("SHOW CATALOGS")
            return (self.stack.trino.trino_catalog,) in cur.fetchall()
        finally:
            conn.close()
