"""Asset checks on the Hive tables: complete, without duplicates, little quarantined."""


from dagster import AssetCheckResult, AssetCheckSeverity, asset_check

from orchestration import warehouse
from orchestration.assets.pipeline import hive_tables
from orchestration.resources import RedisResource, TrinoResource

QUARANTINE_MAX_SHARE = 0.01


@asset_check(asset=hive_tables, description="The tables and summary tables hold every event the engine counted.")
def tables_match_engine_counters(redis: RedisResource, trino: TrinoResource) -> AssetCheckResult:
    found = warehouse.completeness(trino.settings, redis.store())
    meta = {**{f"{c}_engine": n for c, n in found.engine.items()}, **{f"{t}_tables": n for t, n in found.tables.items()},
            **{f"{t}_missing": n for t, n in found.missing.items()}}
    # a few seconds of lag is normal while trades go on: warn, do not fail
    return AssetCheckResult(passed=found.complete, severity=AssetCheckSeverity.WARN, metadata=meta)


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
