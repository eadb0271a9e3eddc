"""The Hive Metastore (Hive 2.3, from pyspark's own jars): on embedded Derby in the local profile,
on the stack's Postgres (`bazaar.stack.postgres`, JDBC driver from Maven Central) in the cluster one.

HiveMetaStore's own main binds every interface, so a small launcher of ours
(`java/LoopbackMetaStore.java`, compiled once into the cache) serves the same
handler on the configured host only.  The health check is a real thrift call.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from urllib.parse import urlparse
from xml.sax.saxutils import escape

from thrift.protocol import TBinaryProtocol
from thrift.Thrift import TMessageType, TType
from thrift.transport import TSocket, TTransport

from bazaar.stack import artifacts
from bazaar.stack.java import default_java
from bazaar.stack.postgres import ROLE, PostgresService
from bazaar.stack.prometheus import jmx_agent
from bazaar.stack.service import Service, ServiceError


logging.getLogger("thrift.transport.TSocket").setLevel(logging.CRITICAL)  # refused probes while starting


def pyspark_jars() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "jars"


def site_xml(props: dict[str, str]) -> str:
    """A Hadoop-style configuration file (hive-site.xml, core-site.xml, hdfs-site.xml)."""
    body = "".join(f"  <property><name>{escape(k)}</name><value>{escape(v)}</value></property>\n"
                   for k, v in props.items())
    return f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n'


def get_all_databases(uri: str, timeout_ms: int = 5000) -> list[str]:
    """The metastore's `get_all_databases` thrift call (binary protocol, buffered transport)."""
    url = urlparse(uri)
    sock = TSocket.TSocket(url.hostname, url.port or 9083)
    sock.setTimeout(timeout_ms)
    transport = TTransport.TBufferedTransport(sock)
    proto = TBinaryProtocol.TBinaryProtocol(transport)
    transport.open()
    try:
        proto.writeMessageBegin("get_all_databases", TMessageType.CALL, 1)
        proto.writeStructBegin("get_all_databases_args")
        proto.writeFieldStop()
        proto.writeStructEnd()
        proto.writeMessageEnd()
        transport.flush()
        _, kind, _ = proto.readMessageBegin()
        if kind == TMessageType.EXCEPTION:
            raise ServiceError("the metastore answered get_all_databases with an exception")
        names: list[str] = []
        proto.readStructBegin()
        while True:
            _, ftype, fid = proto.readFieldBegin()
            if ftype == TType.STOP:
                break
            if fid == 0 and ftype == TType.LIST:
                _, size = proto.readListBegin()
                names = [proto.readString() for _ in range(size)]
                proto.readListEnd()
            else:
                proto.skip(ftype)
            proto.readFieldEnd()
        return names
    finally:
        transport.close()


class MetastoreService(Service):
    port_settings = ('metastore_port', 'metastore_metrics_port')
    name = "metastore"
    startup_timeout = 120.0

    @property
    def address(self) -> str:
        return self.stack.metastore_uri

    @property
    def launcher_source(self):
        return resources.files("bazaar.stack").joinpath("java", "LoopbackMetaStore.java")

    @property
    def launcher_dir(self) -> Path:
        """The compiled launcher, one folder per version of its source."""
        digest = hashlib.sha256(self.launcher_source.read_bytes()).hexdigest()[:12]
        return self.local.cache / f"metastore-launcher-{digest}"

    def prepare(self) -> None:
        self.compile_launcher()
        conf = self.data_dir / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        self.driver_jar = None
        if self.local.profile == "cluster":
            s = self.local
            self.driver_jar = artifacts.fetch(s.maven_repo, "org.postgresql", "postgresql", s.postgres_jdbc_version,
                                              "jar", "fetching Postgres's JDBC driver")
            database = {"javax.jdo.option.ConnectionURL": PostgresService(self.stack).jdbc_url("metastore"),
                        "javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
                        "javax.jdo.option.ConnectionUserName": ROLE,
                        "javax.jdo.option.ConnectionPassword": self.stack.postgres_password}
        else:
            database = {"javax.jdo.option.ConnectionURL":
                        f"jdbc:derby:;databaseName={self.data_dir / 'metastore_db'};create=true"}
        props = {
            **database,
            "datanucleus.schema.autoCreateAll": "true",
            "hive.metastore.schema.verification": "false",
            "hive.async.log.enabled": "false",
            "hive.metastore.warehouse.dir": self.stack.sinks.warehouse_uri,
        }
        site = conf / "hive-site.xml"  # it may hold the database's password: readable by us only
        site.unlink(missing_ok=True)
        with os.fdopen(os.open(site, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(site_xml(props))
        warehouse = urlparse(self.stack.sinks.warehouse_uri)
        if warehouse.scheme == "file":
            Path(warehouse.path).mkdir(parents=True, exist_ok=True)

    def compile_launcher(self) -> None:
        source = self.launcher_source
        marker = self.launcher_dir / "bazaar" / "LoopbackMetaStore.class"
        if marker.exists():
            return
        javac = shutil.which("javac")
        if javac is None:
            raise ServiceError("`javac` (JDK 17) is needed to build the metastore launcher: run `make system-deps`")
        self.launcher_dir.mkdir(parents=True, exist_ok=True)
        with resources.as_file(source) as src:
            out = subprocess.run([javac, "-cp", f"{pyspark_jars()}/*", "-d", str(self.launcher_dir), str(src)],
                                 capture_output=True, text=True)
        if out.returncode != 0:
            raise ServiceError(f"compiling the metastore launcher failed:\n{out.stderr[-3000:]}")

    def command(self) -> list[str]:
        s = self.local
        driver = f"{self.driver_jar}:" if self.driver_jar else ""
        cp = f"{self.data_dir / 'conf'}:{self.launcher_dir}:{driver}{pyspark_jars()}/*"
        # on Postgres, every table made before the first request (LoopbackMetaStore.makeSchema says why)
        schema = ["-Dbazaar.makeSchema=true"] if self.driver_jar else []
        agent = jmx_agent(self.stack, "metastore", s.metastore_metrics_port, self.data_dir)
        return [default_java(), f"-Xmx{s.metastore_heap}", agent, *schema, "-cp", cp, "bazaar.LoopbackMetaStore",
                s.host, str(s.metastore_port)]

    def healthy(self) -> bool:
        return "default" in get_all_databases(self.address, timeout_ms=3000)
