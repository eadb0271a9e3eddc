"""Asset checks on the Hive tables: complete, without duplicates, little quarantined."""


from dagster import AssetCheckResult, AssetCheckSeverity, asset_check

from orchestration import warehouse
from orchestration.assets.pipeline import hive_tables
from orchestration.resources import RedisResource, TrinoResource
from orchestration.settings import CheckSettings

QUARANTINE_MAX_SHARE = 0.01


@asset_check(asset=hive_tables, description="The tables and summary tables hold every event the engine counted, "
                                            "once the pipeline has had time to drain.")
def tables_match_engine_counters(redis: RedisResource, trino: TrinoResource) -> AssetCheckResult:
    drain_s = CheckSettings().completeness_drain_s
    found = warehouse.completeness(trino.settings, redis.store(), drain_s=drain_s)
    meta = {**{f"{c}_engine": n for c, n in found.engine.items()}, **{f"{t}_tables": n for t, n in found.tables.items()},
            **{f"{t}_missing": n for t, n in found.missing.items()}, "drained_s": drain_s}
    return AssetCheckResult(passed=found.complete, severity=AssetCheckSeverity.ERROR, metadata=meta,
                            description=None if found.complete else
                            f"{found.missing_events} events the engine counted are missing from the tables after {drain_s:.0f}s "
                            f"of draining ({', '.join(f'{t}: {n}' for t, n in found.missing.items() if n)})")


@asset_check(asset=hive_tables, description="No event landed twice: each (event, side, item) row is unique.")
def no_duplicate_events(trino: TrinoResource) -> AssetCheckResult:
    dup = trino.execute(
        "select (select count(*) from (select event_id, side, item_traded_item_id from trades "
        "group by 1, 2, 3 having count(*) > 1)) as trades, "
        "(select count(*) from (select event_id, item_held_item_id from player_states "
        "group by 1, 2 having count(*) > 1)) as player_states").iloc[0]
    meta = {f"duplicated_rows_{k}": int(v) for k, v in dup.items()}
    return AssetCheckResult(passed=sum(meta.values()) == 0, metadata=meta)


@asset_check(asset=hive_tables, description=f"Quarantined records stay under {QUARANTINE_MAX_SHARE:.0%} of events.")
def quarantine_below_threshold(trino: TrinoResource) -> AssetCheckResult:
    row = trino.execute("select (select count(*) from quarantine) as quarantined, "
                        "(select count(distinct event_id) from trades) + "
                        "(select count(distinct event_id) from player_states) as events").iloc[0]
    quarantined, events = int(row["quarantined"]), int(row["events"])
    share = quarantined / max(events + quarantined, 1)
    return AssetCheckResult(passed=share < QUARANTINE_MAX_SHARE,
                            metadata={"quarantined": quarantined, "events": events, "share": round(share, 5)})


checks = [tables_match_engine_counters, no_duplicate_events, quarantine_below_threshold]
