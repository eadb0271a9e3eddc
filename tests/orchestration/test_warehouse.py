"""The Hive Metastore and Trino: a Parquet dataset under the warehouse, registered
as a partitioned external table, read back through PyHive."""

import uuid
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from bazaar.stack.hive_metastore import get_all_databases
from orchestration.warehouse import connect


def test_metastore_answers_thrift(metastore_service, stack):
    assert "default" in get_all_databases(stack.metastore_uri)


def test_trino_reads_parquet_partitions_from_the_warehouse(trino_service, stack):
    table = f"t_{uuid.uuid4().hex[:8]}"
    root = Path(urlparse(stack.sinks.warehouse_uri).path) / table
    days = {"2026-11-27": [("a", 3), ("b", 4)], "2026-11-28": [("c", 5), ("d", 6), ("e", 7)]}
    for day, rows in days.items():
        (root / f"dt={day}").mkdir(parents=True)
        pq.write_table(pa.table({"trade_id": [r[0] for r in rows], "qty": [r[1] for r in rows]}),
                       root / f"dt={day}" / "part-0.parquet")

    conn = connect(stack.trino)
    cur = conn.cursor()
    cur.execute(f"CREATE TABLE {table} (trade_id varchar, qty bigint, dt varchar) WITH ("
                f"external_location = '{root.as_uri()}', format = 'PARQUET', partitioned_by = ARRAY['dt'])")
    cur.fetchall()
    cur.execute(f"CALL system.sync_partition_metadata('{stack.trino.database}', '{table}', 'FULL')")
    cur.fetchall()
    cur.execute(f"SELECT dt, count(*), sum(qty) FROM {table} GROUP BY dt ORDER BY dt")
    assert cur.fetchall() == [("2026-11-27", 2, 7), ("2026-11-28", 3, 18)]
    cur.execute(f"DROP TABLE {table}")
    cur.fetchall()
    conn.close()
    assert (root / "dt=2026-11-28" / "part-0.parquet").exists()  # external: dropping keeps the data
