"""HDFS for the cluster profile: a namenode and a datanode, each a process of its own, from
`org.apache.hadoop:hadoop-client-minicluster` at pyspark's own Hadoop version (Maven Central)
beside pyspark's Hadoop client jars.  The warehouse and the sinks' checkpoints live on it
(`hdfs://`); Spark, the metastore and Trino reach it through their Hadoop clients.

Every address binds the stack's host.  The namenode's name folder is formatted once, on the first
start; the health checks read each daemon's own JMX over its web port.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from xml.sax.saxutils import escape

import requests

from bazaar.stack import artifacts
from bazaar.stack.hive_metastore import pyspark_jars
from bazaar.stack.java import default_java
from bazaar.stack.service import Service, ServiceError


def hadoop_version() -> str:
    """The Hadoop version pyspark's client jars are built for (hadoop-client-api-X.jar)."""
    found = sorted(pyspark_jars().glob("hadoop-client-api-*.jar"))
    if not found:
        raise ServiceError(f"no hadoop-client-api jar in {pyspark_jars()}: reinstall pyspark (`make install`)")
    return found[0].name[len("hadoop-client-api-"):-len(".jar")]


def site_xml(props: dict[str, str]) -> str:
    body = "".join(f"  <property><name>{escape(k)}</name><value>{escape(v)}</value></property>\n"
                   for k, v in props.items())
    return f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n'


class HdfsService(Service):
    startup_timeout = 120.0
    main = ""

    @property
    def conf_dir(self) -> Path:
        return self.home / "hdfs-conf"

    @property
    def storage(self) -> Path:
        return self.home / "hdfs-storage"

    def prepare(self) -> None:
        s = self.local
        self.jar = artifacts.fetch(s.maven_repo, "org.apache.hadoop", "hadoop-client-minicluster", hadoop_version(),
                                   "jar", f"fetching HDFS (hadoop-client-minicluster {hadoop_version()})")
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "core-site.xml").write_text(site_xml({"fs.defaultFS": self.stack.hdfs_uri}))
        (self.conf_dir / "hdfs-site.xml").write_text(site_xml({
            "dfs.namenode.name.dir": str(self.storage / "name"),
            "dfs.datanode.data.dir": str(self.storage / "data"),
            "dfs.replication": "1",  # one datanode: HDFS's own replication is the deployment's to choose
            "dfs.namenode.rpc-bind-host": s.host,
            "dfs.namenode.http-address": f"{s.host}:{s.hdfs_http_port}",
            "dfs.datanode.address": f"{s.host}:{s.hdfs_datanode_port}",
            "dfs.datanode.http.address": f"{s.host}:{s.hdfs_datanode_http_port}",
            "dfs.datanode.ipc.address": f"{s.host}:{s.hdfs_datanode_ipc_port}",
            "dfs.namenode.safemode.extension": "0",  # one datanode: nothing to wait for once it reported
        }))
        (self.conf_dir / "log4j2.properties").write_text(
            "rootLogger.level = WARN\nrootLogger.appenderRef.out.ref = out\n"
            "appender.out.type = Console\nappender.out.name = out\nappender.out.layout.type = PatternLayout\n"
            "appender.out.layout.pattern = %d{ISO8601} %p %c{1}: %m%n\n")

    def java_command(self, *args: str) -> list[str]:
        cp = f"{self.conf_dir}:{self.jar}:{pyspark_jars()}/*"
        return [default_java(), f"-Xmx{self.local.hdfs_heap}", "-cp", cp, self.main, *args]

    def command(self) -> list[str]:
        return self.java_command()

    def jmx(self, port: int, bean: str) -> dict:
        beans = requests.get(f"http://{self.local.host}:{port}/jmx", params={"qry": bean}, timeout=3).json()["beans"]
        return beans[0] if beans else {}


class HdfsNameNodeService(HdfsService):
    name = "hdfs-namenode"
    main = "org.apache.hadoop.hdfs.server.namenode.NameNode"

    @property
    def address(self) -> str:
        return self.stack.hdfs_uri

    def prepare(self) -> None:
        super().prepare()
        if not (self.storage / "name" / "current" / "VERSION").exists():
            self.format()

    def format(self) -> None:
        out = subprocess.run(self.java_command("-format", "-nonInteractive", "-clusterid", "bazaar"),
                             capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise ServiceError(f"formatting HDFS's namenode failed:\n{(out.stdout + out.stderr)[-3000:]}")

    def state(self) -> str:
        """`Operational`, or `safeMode` (after a restart, until its datanode has reported its blocks)."""
        return self.jmx(self.local.hdfs_http_port, "Hadoop:service=NameNode,name=FSNamesystemState")["FSState"]

    def healthy(self) -> bool:
        """Serving; in safe mode too, since the datanode that ends it starts after it."""
        return self.state() in ("Operational", "safeMode")


class HdfsDataNodeService(HdfsService):
    name = "hdfs-datanode"
    main = "org.apache.hadoop.hdfs.server.datanode.DataNode"

    @property
    def address(self) -> str:
        return f"{self.local.host}:{self.local.hdfs_datanode_port}"

    def healthy(self) -> bool:
        """Registered with the namenode (its block-pool actor runs), which is out of safe mode: files
        can be written."""
        info = self.jmx(self.local.hdfs_datanode_http_port, "Hadoop:service=DataNode,name=DataNodeInfo")
        actors = json.loads(info.get("BPServiceActorInfo") or "[]")
        return (any(a.get("ActorState") == "RUNNING" for a in actors)
                and HdfsNameNodeService(self.stack).state() == "Operational")


def hdfs_services(stack) -> list[HdfsService]:
    return [HdfsNameNodeService(stack), HdfsDataNodeService(stack)]
