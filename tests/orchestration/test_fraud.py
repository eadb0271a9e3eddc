"""The suspected_fraud report on a small planted economy: the simulator plays every fraud pattern
and every honest look-alike through the engine's HTTP server; the relay, Kafka and the two sinks
land it; Trino answers the report. Held against the simulator's ground truth: who was planted in
which pattern and role, and which ring-mates each traded with (computed from the simulator's own
record of its ring trades, not from the report)."""

from collections import Counter, defaultdict

import pytest

from bazaar import rings
from bazaar.simulate import CHEAT, Simulator
from bazaar.stack import EngineService
from bazaar.stack.api_key import ensure_stack_key
from bazaar.stack.ports import free_port
from engine.db import make_store
from orchestration import reports, warehouse
from tests.pipeline import pipeline_stack, running_pipeline


@pytest.fixture(scope="module")
def fraud(stack, tmp_path_factory, redis_service, kafka_service, trino_service):
    s = pipeline_stack(stack, tmp_path_factory.mktemp("fraud"), engine_port=free_port(), engine_workers=2)
    with running_pipeline(s, EngineService(s)):
        warehouse.ensure_views(s.trino)
        sim = Simulator(s.engine_url, seed=5, concurrency=4, cheater_share=0.2, api_key=ensure_stack_key(s),
                        offer_share=0.1, lookalike_share=0.2)
        sim.run(players=150, trades=2_500, show_progress=False)
        store = make_store(s.redis)
        try:
            warehouse.wait_until_complete(s.trino, store, timeout=300)
        finally:
            store.r.close()
        yield s, sim.truth, reports.REPORTS["suspected_fraud"].run(lambda query: warehouse.query(s.trino, query))


def ring_trades(truth):
    """Per player: the players it traded with in its own ring's executed trades, and how many times."""
    kinds = {CHEAT, *rings.FRAUD}
    with_whom = defaultdict(Counter)
    for t in truth.executed():
        if t["kind"] not in kinds:
            continue
        a, b = t["request"]["player_1"]["player_id"], t["request"]["player_2"]["player_id"]
        with_whom[a][b] += 1
        with_whom[b][a] += 1
    return with_whom


def test_every_planted_player_is_flagged_in_its_pattern_and_role_and_no_one_else(fraud):
    s, truth, frame = fraud
    planted = {p: (pattern, role) for p, (pattern, role) in truth.roles.items() if pattern in rings.FRAUD}
    assert {pattern for pattern, _ in planted.values()} == set(rings.FRAUD)
    # the simulator played them: each planted player traded in its ring
    with_whom = ring_trades(truth)
    assert all(with_whom[p] for p in planted), [p for p in planted if not with_whom[p]]
    flagged = {int(r.player_id): (r.pattern, r.role) for r in frame.itertuples()}
    assert set(flagged) <= set(truth.players)  # a pipeline of its own: only this run's players
    missed = {p: planted[p] for p in planted if flagged.get(p) != planted[p]}
    extra = {p: flagged[p] for p in flagged if p not in planted}
    assert not missed and not extra, (missed, extra)


def test_no_honest_look_alike_is_flagged(fraud):
    _, truth, frame = fraud
    honest = {p: pattern for p, (pattern, _) in truth.roles.items() if pattern in rings.LOOKALIKES}
    assert set(honest.values()) == set(rings.LOOKALIKES)
    assert set(frame.player_id.astype(int)) & set(honest) == set()


def test_the_evidence_names_each_players_ring_mates_and_their_trades(fraud):
    _, truth, frame = fraud
    with_whom = ring_trades(truth)
    for r in frame.itertuples():
        mates = with_whom[int(r.player_id)]
        assert sorted(int(p) for p in r.partner_ids.split(",")) == sorted(mates), r
        assert (r.partners, r.trades) == (len(mates), sum(mates.values())), r
        # each trade lopsided: at least the minimum given, a tenth of it at most back
        assert r.value_moved >= 0.9 * rings.MIN_VALUE * r.trades, r
        assert r.score == pytest.approx(r.value_moved / rings.MIN_VALUE, abs=0.1)


def test_the_report_and_its_chart_are_stored(fraud, tmp_path):
    _, _, frame = fraud
    meta = reports.store(tmp_path, "suspected_fraud", frame)
    assert meta["files"] == ["report.csv", "report.parquet", "chart.png"] and meta["rows"] == len(frame)
    assert (tmp_path / "suspected_fraud" / "chart.png").stat().st_size > 10_000


# ---- the shapes read from flows (pure: hand-made flows in, the report out) ------------------------------

def flows_of(rows, trades_of=None):
    """`rows`: (giver, receiver, kind, trades, value); each player's executed trades, by default the
    lopsided ones it is in."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=["giver_id", "receiver_id", "kind", "trades", "value_moved"])
    counted = Counter()
    for g, r, _, n, _ in rows:
        counted[g] += n
        counted[r] += n
    counted.update(trades_of or {})
    return frame.assign(giver_trades=frame.giver_id.map(counted), receiver_trades=frame.receiver_id.map(counted))


def test_each_shape_is_read_from_its_flows():
    from orchestration import fraud

    rows = [(10, 11, "transfer", 3, 30_000), (10, 12, "transfer", 2, 20_000)]  # a pair ring: 10 feeds 11 and 12
    rows += [(f, 20, "transfer", 2, 8_000) for f in (21, 22, 23, 24)]  # a star: four farmers, a banker keeping it
    rows += [(31, 30, "transfer", 2, 9_000), (32, 30, "transfer", 3, 9_000), (30, 33, "transfer", 2, 15_000)]  # chain
    rows += [(40, m, "transfer", 1, 3_000) for m in (41, 42, 43)] + [(m, 44, "transfer", 1, 2_900) for m in (41, 42, 43)]
    rows += [(b, 50, "overpay", 1, 2_000) for b in (51, 52, 53)]  # three buyers overpaying one seller
    rows += [(60, 61, "transfer", 2, 4_000), (61, 60, "transfer", 2, 3_500)]  # friends, turn about
    rows += [(70, 71, "transfer", 1, 1_500), (70, 72, "transfer", 1, 1_500)]  # a veteran's help, kept
    # honest trades besides: the chain's and the star's members trade, a mule does not
    frame = fraud.detect(flows_of(rows, {30: 5, 20: 40, 21: 9, 11: 12}))
    got = {r.player_id: (r.pattern, r.role) for r in frame.itertuples()}
    assert got == {10: ("pair", "giver"), 11: ("pair", "receiver"), 12: ("pair", "receiver"),
                   20: ("star", "banker"), **{f: ("star", "farmer") for f in (21, 22, 23, 24)},
                   30: ("chain", "merchant"), 31: ("chain", "farmer"), 32: ("chain", "farmer"), 33: ("chain", "banker"),
                   40: ("mule", "source"), 44: ("mule", "hub"), **{m: ("mule", "mule") for m in (41, 42, 43)},
                   50: ("rmt", "seller"), **{b: ("rmt", "buyer") for b in (51, 52, 53)}}
    banker = frame.set_index("player_id").loc[20]
    assert (banker.partners, banker.partner_ids, banker.trades, banker.value_moved, banker.score) == \
        (4, "21,22,23,24", 8, 32_000, 32.0)


def test_a_shape_short_of_its_threshold_is_not_read():
    from orchestration import fraud

    rows = [(f, 20, "transfer", 2, 8_000) for f in (21, 22, 23)]  # three farmers: not a star
    rows += [(b, 50, "overpay", 1, 2_000) for b in (51, 52)]  # two overpaying buyers: not a seller
    rows += [(40, m, "transfer", 1, 3_000) for m in (41, 42)] + [(m, 44, "transfer", 1, 2_900) for m in (41, 42)]
    # players passing a gift on to the same player, who also trade otherwise: not mules
    rows += [(80, m, "transfer", 1, 3_000) for m in (81, 82, 83)] + [(m, 84, "transfer", 1, 2_900) for m in (81, 82, 83)]
    frame = fraud.detect(flows_of(rows, {21: 9, 22: 9, 23: 9, 81: 30, 82: 30, 83: 30}))
    # the three farmers are each a pair with the banker; nothing else
    assert {r.player_id: r.pattern for r in frame.itertuples()} == {20: "pair", 21: "pair", 22: "pair", 23: "pair"}


def test_no_flows_or_no_transfers_is_an_empty_report_not_an_error():
    from orchestration import fraud

    empty = fraud.detect(flows_of([]))
    assert list(empty.columns) == fraud.COLUMNS and empty.empty
    # overpays only, too few buyers for a seller: no transfer to read any other shape from
    assert fraud.detect(flows_of([(51, 50, "overpay", 1, 2_000), (52, 50, "overpay", 1, 2_000)])).empty


def test_evidence_is_the_flows_a_shape_was_read_from_whatever_pattern_a_partner_is_in():
    from orchestration import fraud

    # a star (four farmers feeding banker 20) whose banker also banks a chain (31 -> merchant 30 -> 20)
    rows = [(f, 20, "transfer", 2, 8_000) for f in (21, 22, 23, 24)]
    rows += [(31, 30, "transfer", 2, 9_000), (30, 20, "transfer", 2, 8_000)]
    frame = fraud.detect(flows_of(rows, {30: 5})).set_index("player_id")
    assert (frame.loc[20, "pattern"], frame.loc[20, "role"]) == ("chain", "banker")  # chain comes first
    for f in (21, 22, 23, 24):  # still a star's farmers, their evidence naming the banker
        assert (frame.loc[f, "pattern"], frame.loc[f, "partner_ids"], frame.loc[f, "trades"],
                frame.loc[f, "value_moved"]) == ("star", "20", 2, 8_000)
    # the banker's evidence is its chain's flow, not the star's
    assert (frame.loc[20, "partner_ids"], frame.loc[20, "value_moved"]) == ("30", 8_000)
    # highest score first
    assert list(frame.score) == sorted(frame.score, reverse=True)
