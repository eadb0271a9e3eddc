"""HDFS for the cluster profile: a namenode and a datanode, each a process of its own, from
`org.apache.hadoop:hadoop-client-minicluster` at pyspark's own Hadoop version (Maven Central)
beside pyspark's Hadoop client jars.  The warehouse and the sinks' checkpoints live on it
(`hdfs://`); Spark, the metastore and Trino reach it through their Hadoop clients.

Every address binds the stack's host.  The namenode's name folder is formatted once, on the first
start; the health checks read each daemon's own JMX over its web port.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import requests

from bazaar.stack import artifacts
from bazaar.stack.hive_metastore import pyspark_jars, site_xml
from bazaar.stack.java import default_java
from bazaar.stack.service import Service, ServiceError


def hadoop_version() -> str:
    """The Hadoop version pyspark's client jars are built for (hadoop-client-api-X.jar)."""
    found = sorted(pyspark_jars().glob("hadoop-client-api-*.jar"))
    if not found:
        raise ServiceError(f"no hadoop-client-api jar in {pyspark_jars()}: reinstall pyspark (`make install`)")
    return found[0].name[len("hadoop-client-api-"):-len(".jar")]


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
        version = hadoop_version()
        self.jar = artifacts.fetch(s.maven_repo, "org.apache.hadoop", "hadoop-client-minicluster", version,
                                   "jar", f"fetching HDFS (hadoop-client-minicluster {version})")
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        artifacts.write_if_changed(self.conf_dir / "core-site.xml", site_xml({"fs.defaultFS": self.stack.hdfs_uri}))
        artifacts.write_if_changed(self.conf_dir / "hdfs-site.xml", site_xml({
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
        artifacts.write_if_changed(
            self.conf_dir / "log4j2.properties", "rootLogger.level = WARN\nrootLogger.appenderRef.out.ref = out\n"
            "appender.out.type = Console\nappender.out.name = out\nappender.out.layout.type = PatternLayout\n"
            "appender.out.layout.pattern = %d{ISO8601} %p %c{1}: %m%n\n")

    def java_command(self, *args: str) -> list[str]:
        cp = f"{self.conf_dir}:{self.jar}:{pyspark_jars()}/*"
        return [default_java(), f"-Xmx{self.local.hdfs_heap}", "-cp", cp, self.main, *args]

    def command(self) -> list[str]:
        return self.java_command()

    def jmx(self, port: int, bean: str, attribute: str):
        """One attribute of one of the daemon's JMX beans (asking for one attribute, not the whole
        bean: reading every attribute of a daemon still starting logs a stack trace each time)."""
        beans = requests.get(f"http://{self.local.host}:{port}/jmx", params={"get": f"{bean}::{attribute}"},
                             timeout=3).json()["beans"]
        return beans[0].get(attribute) if beans else None


class HdfsNameNodeService(HdfsService):
    port_settings = ('hdfs_port', 'hdfs_http_port')
    name = "hdfs-namenode"
    main = "org.apache.hadoop.hdfs.server.namenode.NameNode"

    @property
    def address(self) -> str:
        return self.stack.hdfs_uri

    @property
    def formatted(self) -> Path:
        return self.storage / "formatted"

    def prepare(self) -> None:
        super().prepare()
        name = self.storage / "name" / "current"
        if not self.formatted.exists() and any(name.glob("fsimage_*.md5")):  # formatted before the marker was
            self.formatted.write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
        if not self.formatted.exists():
            self.format()

    def format(self) -> None:
        """Format the namespace, once: a format cut short (the marker is written after it) is begun
        again from empty folders, the datanode's too, whose blocks would belong to no namespace."""
        for folder in ("name", "data"):
            shutil.rmtree(self.storage / folder, ignore_errors=True)
        out = subprocess.run(self.java_command("-format", "-nonInteractive", "-clusterid", "bazaar"),
                             capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise ServiceError(f"formatting HDFS's namenode failed:\n{(out.stdout + out.stderr)[-3000:]}")
        self.formatted.write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))

    def state(self) -> str:
        """`Operational`, or `safeMode` (after a restart, until its datanode has reported its blocks)."""
        return self.jmx(self.local.hdfs_http_port, "Hadoop:service=NameNode,name=FSNamesystemState", "FSState")

    def healthy(self) -> bool:
        """Serving; in safe mode too, since the datanode that ends it starts after it."""
        return self.state() in ("Operational", "safeMode")


class HdfsDataNodeService(HdfsService):
    port_settings = ('hdfs_datanode_port', 'hdfs_datanode_http_port', 'hdfs_datanode_ipc_port')
    name = "hdfs-datanode"
    main = "org.apache.hadoop.hdfs.server.datanode.DataNode"

    @property
    def address(self) -> str:
        return f"{self.local.host}:{self.local.hdfs_datanode_port}"

    def healthy(self) -> bool:
        """Registered with the namenode (its block-pool actor runs), which is out of safe mode: files
        can be written."""
        actors = json.loads(self.jmx(self.local.hdfs_datanode_http_port, "Hadoop:service=DataNode,name=DataNodeInfo",
                                     "BPServiceActorInfo") or "[]")
        return (any(a.get("ActorState") == "RUNNING" for a in actors)
                and HdfsNameNodeService(self.stack).state() == "Operational")


def hdfs_services(stack) -> list[HdfsService]:
    return [HdfsNameNodeService(stack), HdfsDataNodeService(stack)]
