"""The few Hadoop file system calls the sinks and compaction make, on any Hadoop file system
(`file://` on one machine, `hdfs://` in the cluster shape), through the driver's JVM."""

from __future__ import annotations

from pyspark.sql import SparkSession


class HadoopFs:
    """A Hadoop `FileSystem` for the URIs under `root`, seen as plain strings."""

    def __init__(self, spark: SparkSession, root: str):
        jvm = spark._jvm
        self._Path = jvm.org.apache.hadoop.fs.Path
        self._jvm = jvm
        self._gateway = spark.sparkContext._gateway
        self.conf = spark._jsc.hadoopConfiguration()
        self.fs = self._Path(root).getFileSystem(self.conf)

    def path(self, uri: str):
        return self._Path(uri)

    def qualified(self, uri: str) -> str:
        """The URI as the file system writes it (`file:/x`, `hdfs://host:port/x`), to compare locations."""
        return self.fs.makeQualified(self._Path(uri)).toString()

    def exists(self, uri: str) -> bool:
        return self.fs.exists(self._Path(uri))

    def mtime(self, uri: str) -> int:
        """Modification time in ms, 0 when the file does not exist."""
        p = self._Path(uri)
        return self.fs.getFileStatus(p).getModificationTime() if self.fs.exists(p) else 0

    def glob(self, pattern: str) -> list[str]:
        return [s.getPath().toString() for s in (self.fs.globStatus(self._Path(pattern)) or [])]

    def list(self, uri: str) -> list[tuple[str, bool, int]]:
        """(name, is a folder, size) of each entry of a folder; empty when it does not exist."""
        p = self._Path(uri)
        if not self.fs.exists(p):
            return []
        return [(s.getPath().getName(), s.isDirectory(), s.getLen()) for s in self.fs.listStatus(p)]

    def files(self, uri: str) -> list[str]:
        """Every file under a folder, recursively, as full URIs."""
        p = self._Path(uri)
        if not self.fs.exists(p):
            return []
        out, it = [], self.fs.listFiles(p, True)
        while it.hasNext():
            out.append(it.next().getPath().toString())
        return out

    def read(self, uri: str) -> str:
        stream = self.fs.open(self._Path(uri))
        try:
            reader = self._jvm.java.io.BufferedReader(self._jvm.java.io.InputStreamReader(stream, "UTF-8"))
            lines = []
            while (line := reader.readLine()) is not None:
                lines.append(line)
            return "\n".join(lines)
        finally:
            stream.close()

    def write(self, uri: str, text: str) -> None:
        """Write a small file whole: to a temporary name beside it, then renamed to its name (over the old
        one in one step, with FileContext's rename with OVERWRITE), so a reader sees the old content or
        the new, never a part or neither."""
        target = self._Path(uri)
        tmp = self._Path(target.getParent(), f".{target.getName()}.tmp")
        out = self.fs.create(tmp, True)
        try:
            out.write(bytearray(text.encode()))
        finally:
            out.close()
        if self.fs.rename(tmp, target):  # a new file (a commit record): the file system's own rename
            return
        fs = self._jvm.org.apache.hadoop.fs
        options = self._gateway_array(fs.Options.Rename, [fs.Options.Rename.OVERWRITE])
        fs.FileContext.getFileContext(target.toUri(), self.conf).rename(tmp, target, options)

    def _gateway_array(self, kind, items):
        array = self._gateway.new_array(kind, len(items))
        for i, item in enumerate(items):
            array[i] = item
        return array

    def mkdirs(self, uri: str) -> None:
        self.fs.mkdirs(self._Path(uri))

    def rename(self, src: str, dst: str) -> None:
        if not self.fs.rename(self._Path(src), self._Path(dst)):
            raise OSError(f"could not rename {src} to {dst}")

    def move(self, src: str, dst: str) -> bool:
        """Rename a file that another process may move to the same place at the same time (a sink and
        compaction both moving a late batch file): done when it is at `dst`, whoever moved it. False
        when it is at neither place."""
        if self.fs.rename(self._Path(src), self._Path(dst)) or self.exists(dst):
            return True
        if self.exists(src):
            raise OSError(f"could not move {src} to {dst}")
        return False

    def copy(self, src: str, dst: str) -> None:
        """Copy a file: to a hidden name beside `dst`, then renamed, so readers never see a part."""
        target = self._Path(dst)
        tmp = self._Path(target.getParent(), f".{target.getName()}.copying")
        if not self._jvm.org.apache.hadoop.fs.FileUtil.copy(self.fs, self._Path(src), self.fs, tmp, False, True, self.conf):
            raise OSError(f"could not copy {src} to {dst}")
        self.rename(tmp.toString(), dst)

    def delete(self, uri: str, recursive: bool = False) -> bool:
        return bool(self.fs.delete(self._Path(uri), recursive))
