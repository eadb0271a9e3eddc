"""The Hive Metastore and Trino: a Parquet dataset under the warehouse, registered
as a partitioned external table by the warehouse's owner, read back through PyHive; and who
else Trino lets in (nobody without a password, the reader only to read)."""

import uuid
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from pydantic import SecretStr
from pyhive.exc import DatabaseError, OperationalError

from bazaar.stack.hive_metastore import get_all_databases
from orchestration import warehouse
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

    conn = connect(stack.trino.as_owner())
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


def refused(settings, statement: str) -> str:
    """Trino's reason for refusing `statement` from `settings`' principal (fails if it ran)."""
    with pytest.raises((DatabaseError, OperationalError)) as refusal:
        warehouse.execute(settings, statement)
    return str(refusal.value)


def test_trino_lets_the_owner_write_the_reader_read_and_nobody_else_in(trino_service, stack):
    owner, reader = stack.trino.as_owner(), stack.trino
    table = f"t_{uuid.uuid4().hex[:8]}"
    root = Path(urlparse(stack.sinks.warehouse_uri).path) / table
    root.mkdir(parents=True)
    pq.write_table(pa.table({"trade_id": ["a", "b"]}), root / "part-0.parquet")
    warehouse.execute(owner, f"create table {table} (trade_id varchar) with (external_location = "
                             f"'{root.as_uri()}', format = 'PARQUET')")
    warehouse.execute(owner, f"create or replace view v_{table} as select count(*) as n from {table}")
    try:
        # the reader reads the table, and the owner's view over it
        assert sorted(warehouse.execute(reader, f"select trade_id from {table}").trade_id) == ["a", "b"]
        assert warehouse.execute(reader, f"select n from v_{table}").n.tolist() == [2]
        # and changes nothing: not the table, not the view the reports read, not the schema
        for statement in (f"drop table {table}", f"insert into {table} values ('c')",
                          f"create or replace view v_{table} as select 99 as n", f"create table x_{table} (a int)",
                          f"call system.sync_partition_metadata('{stack.trino.database}', '{table}', 'FULL')"):
            assert "Access Denied" in refused(reader, statement), statement
        assert warehouse.execute(owner, f"select n from v_{table}").n.tolist() == [2]
        # no password, a wrong one, a user Trino does not know: not even connected
        nobody = reader.model_copy(update={"trino_password": None})
        wrong = reader.model_copy(update={"trino_password": SecretStr(reader.trino_owner_password.get_secret_value())})
        stranger = reader.model_copy(update={"trino_user": "admin"})
        for settings in (nobody, wrong, stranger):
            assert "401" in refused(settings, "select 1")
        # nor over the internal HTTP port, with or without the owner's password
        internal = f"http://{stack.host}:{stack.local.trino_internal_port}/v1/statement"
        for auth in (None, (owner.trino_user, owner.trino_password.get_secret_value())):
            answer = requests.post(internal, data="select 1", headers={"X-Trino-User": "owner"}, auth=auth, timeout=10)
            assert answer.status_code in (401, 403), answer.text
        # the certificate is the stack's own: a client that does not know its CA refuses it
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"https://{stack.host}:{stack.local.trino_port}/v1/info", timeout=10)
        assert requests.get(f"https://{stack.host}:{stack.local.trino_port}/v1/info",
                            verify=str(reader.trino_ca_file), timeout=10).ok
    finally:
        warehouse.execute(owner, f"drop view if exists v_{table}")
        warehouse.execute(owner, f"drop table if exists {table}")
