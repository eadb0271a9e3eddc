"""The main job end to end: `bazaar demo` on a stack of its own (own ports and home), then
every report Dagster stored checked against the simulator's ground truth.  Once in each shape: the
local profile, and the cluster profile (three Kafka brokers, HDFS, Spark standalone, Postgres,
Dagster over gRPC), whose tables must live on `hdfs://`."""

import re
import secrets
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone

import pandas as pd
import psutil
import pytest
import requests

from bazaar.main_job import REPORTS_JOB
from bazaar import rings
from bazaar.simulate import CHEAT, Truth
from bazaar.stack import PostgresService, PrometheusService, TrinoService, services
from engine.db import make_store
from bazaar.stack.ports import isolated_env, stack_from_env
from orchestration import reports, warehouse
from tests.pipeline import funnel, lopsided, trade_rows, value_given

SEED = 11
pytestmark = pytest.mark.timeout(1800)  # the first test also waits for its stack to start and the demo to run


# secrets the operator's shell holds when it starts the stack: the token secret and Postgres' password
# reach only the services that use them; anything else the shell holds reaches none
OPERATOR_SECRETS = {"BAZAAR_TOKEN_SECRET": secrets.token_urlsafe(40), "BAZAAR_POSTGRES_PASSWORD": secrets.token_urlsafe(24),
                    "GAME_STUDIO_CLOUD_TOKEN": secrets.token_urlsafe(24)}


@pytest.fixture(scope="module", params=["local", pytest.param("cluster", marks=pytest.mark.cluster)])
def demo(request, tmp_path_factory):
    env = isolated_env(tmp_path_factory.mktemp(f"demo-{request.param}-home"), BAZAAR_PROFILE=request.param,
                       **OPERATOR_SECRETS)
    try:
        out = subprocess.run([sys.executable, "-m", "bazaar", "demo", "--players", "60", "--trades", "900",
                              "--cheater-share", "0.1", "--seed", str(SEED)],
                             env=env, capture_output=True, text=True, timeout=1500)
        assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
        s = stack_from_env(env)
        assert s.local.profile == request.param
        yield s, Truth.load(s.home / "simulation"), out.stdout, env
    finally:
        subprocess.run([sys.executable, "-m", "bazaar", "down"], env=env, capture_output=True, timeout=300)


def test_the_cluster_profile_keeps_its_tables_on_hdfs_and_its_metadata_in_postgres(demo):
    s, _, _, _ = demo
    if s.local.profile != "cluster":
        pytest.skip("the cluster profile's storage")
    conn = PostgresService(s).connect("metastore")
    try:
        with conn.cursor() as cur:
            cur.execute('SELECT t."TBL_NAME", s."LOCATION" FROM "TBLS" t JOIN "SDS" s ON t."SD_ID" = s."SD_ID" '
                        """WHERE t."TBL_TYPE" <> 'VIRTUAL_VIEW'""")  # the reports' views have no location
            locations = dict(cur.fetchall())
            cur.execute("""SELECT indexname FROM pg_indexes WHERE tablename IN ('TBLS', 'PARTITIONS')""")
            indexes = {name for (name,) in cur.fetchall()}
    finally:
        conn.close()
    hdfs = f"hdfs://{s.host}:{s.local.hdfs_port}/"
    assert {"trades", "player_states", "trade_sides", "state_summaries", "offers"} <= set(locations)
    assert all(loc.startswith(hdfs) for loc in locations.values()), locations
    assert {"UNIQUETABLE", "UNIQUEPARTITION"} <= indexes  # the schema made whole, keys and all
    conn = PostgresService(s).connect("dagster")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT status FROM runs WHERE pipeline_name = %s", (REPORTS_JOB,))
            assert ("SUCCESS",) in cur.fetchall()  # the demo's run, kept in Dagster's Postgres storage
    finally:
        conn.close()


def test_secrets_reach_only_the_processes_that_need_them(demo):
    """Every process of every service (its keeper and all it started): which secrets are in its
    environment, none in its command line; and none in any log the stack wrote."""
    s, _, _, env = demo
    trino = s.trino
    known = {**OPERATOR_SECRETS, "api key": s.api_key, "trino reader": trino.trino_password.get_secret_value(),
             "trino owner": trino.trino_owner_password.get_secret_value(),
             "trino keystore": (s.trino_tls / "keystore-password").read_text().strip(),
             "trino internal": (TrinoService(s).data_dir / "internal-secret").read_text().strip(),
             "redis": s.redis.redis_password.get_secret_value(),
             **{f"kafka {who}": s.kafka_login(who).password for who in ("admin", "relay", "sinks")}}
    held = defaultdict(set)  # secret -> the services whose processes hold it in their environment
    processes = 0
    for svc in services(s):
        pid = svc.pid()
        if pid is None:
            continue
        top = psutil.Process(pid)
        for proc in [top, *top.children(recursive=True)]:
            try:
                environ, cmdline = proc.environ(), " ".join(proc.cmdline())
            except psutil.NoSuchProcess:
                continue
            processes += 1
            values = set(environ.values())
            for name, secret in known.items():
                assert secret not in cmdline, f"{name} in the command line of {svc.name}'s {proc.pid}"
                if any(secret in v for v in values):
                    held[name].add(svc.name)
    assert processes >= 12
    assert held["BAZAAR_TOKEN_SECRET"] == {"engine"}  # the engine's keeper and its workers
    if s.local.profile == "cluster":  # Dagster's storage; the metastore reads it from its own config file
        assert held["BAZAAR_POSTGRES_PASSWORD"] == {"dagster", "dagster-daemon", "dagster-code"}
    else:
        assert "BAZAAR_POSTGRES_PASSWORD" not in held
    assert "GAME_STUDIO_CLOUD_TOKEN" not in held and "api key" not in held
    dagster = {"dagster", "dagster-daemon"} | ({"dagster-code"} if s.local.profile == "cluster" else set())
    assert held["trino owner"] == dagster  # the views
    assert held["trino reader"] == dagster | {"reports"}  # the reports, the dashboard
    assert "trino keystore" not in held and "trino internal" not in held  # in Trino's own configuration file
    assert held["redis"] == {"engine", "relay"} | dagster  # Redis reads it from its own configuration file
    # Dagster's topic asset logs in as Kafka's admin and sets the relay's and the sinks' passwords (its
    # supervisor starts sinks); the brokers read the admin's from their own configuration file
    assert held["kafka admin"] == dagster
    assert held["kafka relay"] == {"relay"} | dagster
    assert held["kafka sinks"] == {"sink-trades", "sink-player_states"} | dagster
    logs = [p for p in s.home.rglob("*") if p.is_file() and (p.suffix in (".log", ".out", ".err") or "logs" in p.parts)
            and p.stat().st_size < 200 << 20]
    assert len(logs) >= 10
    for path in logs:
        text = path.read_bytes()
        for name, secret in known.items():
            assert secret.encode() not in text, f"{name} in {path}"


def report(s, name) -> pd.DataFrame:
    frame = pd.read_parquet(reports.report_dir(s.reports.reports_dir, name) / "report.parquet")
    meta = reports.load_meta(s.reports.reports_dir, name)  # stored by the Dagster run beside the report
    assert meta["rows"] == len(frame) and meta["columns"] == list(frame.columns) and meta["computed_at"]
    return frame


def answered(truth):
    """(request, answer) of every trade the engine decided (executed or rejected)."""
    return [(t["request"], t["answer"]) for t in truth.trades if t["status"] in (200, 409)]


def states(truth):
    """Every state the engine answered with: as created, after each executed trade, and those the
    offers left (into escrow, back from it)."""
    out = list(truth.players.values()) + truth.states
    for _, answer in answered(truth):
        if answer["status"] == "executed":
            out += [answer["player_1"], answer["player_2"]]
    return out


def test_demo_ran_the_whole_flow(demo):
    s, truth, stdout, _ = demo
    assert len(truth.players) == 60
    through_offers = [t for t in truth.trades if "offer_id" in t]  # the rest of the 900 were offers cancelled
    assert 700 <= len(truth.trades) <= 900 and 50 <= len(through_offers)
    assert all(t["status"] in (200, 409) for t in truth.trades)  # no errors, no 5xx
    assert {o["status"] for o in truth.offers} == {"accepted", "cancelled", "expired"}
    assert "offers_funnel" in stdout
    assert "reports materialized by Dagster run" in stdout and s.dagster_url in stdout
    assert f"live dashboard: {s.dashboard_url}" in stdout and s.prometheus_url in stdout
    assert {p["player_class"] for pid, p in truth.players.items() if pid in truth.cheaters} <= {"noble", "merchant"}


def test_the_offers_funnel_matches_the_offers_made(demo):
    s, truth, _, _ = demo
    got, want = report(s, "offers_funnel").values.tolist(), funnel(truth.offers)
    assert [r[:6] for r in got] == [r[:6] for r in want]
    assert [r[6] for r in got] == pytest.approx([r[6] for r in want], abs=1e-6)


def test_seed_questions_match_the_ground_truth(demo):
    s, truth, _, _ = demo
    trades = answered(truth)
    assert report(s, "trade_count").values.tolist() == [[len({a["trade_id"] for _, a in trades})]]

    items = report(s, "most_traded_items")
    got = {(None if pd.isna(r.item_traded_item_id) else int(r.item_traded_item_id), r.item_traded_name): r.num_traded
           for r in items.itertuples()}
    assert got == dict(trade_rows(body for body, _ in trades))

    all_states = states(truth)
    uniq = [len({i["item_id"] for i in st["inventory"]["items"]}) for st in all_states]
    (diverse,) = report(s, "most_diverse_inventory").itertuples()
    assert diverse.num_uniq_items == max(uniq)
    worth = [sum(i["value"] * i["quantity"] for i in st["inventory"]["items"]) for st in all_states]
    (rich,) = report(s, "most_valuable_inventory").itertuples()
    assert rich.cum_item_value == max(worth)
    assert rich.player_id in {st["player_id"] for st, w in zip(all_states, worth) if w == max(worth)}


def test_volume_rejections_and_classes_match(demo):
    s, truth, _, _ = demo
    trades = answered(truth)
    executed = sum(a["status"] == "executed" for _, a in trades)
    hourly = report(s, "trade_volume_by_hour")
    assert (hourly.trades.sum(), hourly.executed.sum(), hourly.rejected.sum()) == \
        (len(trades), executed, len(trades) - executed)

    rejected = Counter(a["fail_reason"] for _, a in trades if a["status"] == "rejected")
    by_reason = report(s, "rejections_by_reason")
    assert dict(zip(by_reason.fail_reason, by_reason.trades)) == dict(rejected)

    latest = {}
    for st in states(truth):
        if st["version"] >= latest.get(st["player_id"], {"version": -1})["version"]:
            latest[st["player_id"]] = st
    classes = report(s, "class_wealth").set_index("player_class")
    want = defaultdict(list)
    for st in latest.values():
        want[st["player_class"]].append(st["gold"])
    assert {c: int(n) for c, n in classes.players.items()} == {c: len(g) for c, g in want.items()}
    assert {c: int(g) for c, g in classes.max_gold.items()} == {c: max(g) for c, g in want.items()}


def test_lopsided_reports_match_and_the_planted_pairs_are_suspected_cheaters(demo):
    s, truth, _, _ = demo
    expected = lopsided(answered(truth))
    got = report(s, "lopsided_trades")
    assert {r.trade_id: (r.giver_id, r.receiver_id, r.value_given, r.value_received)
            for r in got.itertuples()} == expected

    gained = Counter()
    for _, receiver, given, received in expected.values():
        gained[receiver] += given - received
    players = report(s, "lopsided_players")
    assert dict(zip(players.player_id, players.value_gained)) == dict(gained)

    pairs = defaultdict(list)
    for giver, receiver, given, received in expected.values():
        pairs[(giver, receiver)].append(given - received)
    repeated = {pair: moved for pair, moved in pairs.items() if len(moved) >= 2}
    rows = defaultdict(lambda: [0, 0, 0])
    for (giver, receiver), moved in repeated.items():
        for key in ((giver, "giver"), (receiver, "receiver")):
            rows[key][0] += 1
            rows[key][1] += len(moved)
            rows[key][2] += sum(moved)
    suspects = report(s, "suspected_cheaters")
    assert {(r.player_id, r.role): [r.partners, r.lopsided_trades, r.value_moved]
            for r in suspects.itertuples()} == dict(rows)

    # the pair rings the simulator planted: a cheater and an accomplice it passed at least the
    # report's minimum value to, twice or more (the other patterns' pairs are there too)
    cheats = Counter((t["request"]["player_1"]["player_id"], t["request"]["player_2"]["player_id"])
                     for t in truth.executed(CHEAT) if value_given(t["request"]["player_1"]) >= 1_000)
    planted = {(g, "giver") for (g, _), n in cheats.items() if n >= 2} | \
              {(r, "receiver") for (_, r), n in cheats.items() if n >= 2}
    assert len(planted) >= 2
    assert planted <= set(zip(suspects.player_id, suspects.role))


def test_suspected_fraud_finds_every_planted_pattern_and_the_demo_says_how_well(demo):
    """suspected_fraud finds each pattern the demo planted, in its ring members with their roles, and
    flags no honest player (held against the simulator's ground truth); the demo prints per pattern
    how the report did. (Exactly every member, on an economy planted for it: tests/orchestration/
    test_fraud.py; a ring of this small demo may lose a step to its members' own honest trading.)"""
    s, truth, stdout, _ = demo
    got = {int(r.player_id): (r.pattern, r.role) for r in report(s, "suspected_fraud").itertuples()}
    planted = {p: tuple(pr) for p, pr in truth.roles.items() if pr[0] in rings.FRAUD}
    assert {pattern for pattern, _ in planted.values()} == set(rings.FRAUD)
    found = {p for p in planted if got.get(p) == planted[p]}
    assert {planted[p][0] for p in found} == set(rings.FRAUD)  # every pattern, in its own members
    assert len(found) >= 0.8 * len(planted), {p: (planted[p], got.get(p)) for p in planted if p not in found}
    assert set(got) <= set(planted), {p: got[p] for p in got if p not in planted}  # nobody honest
    assert "suspected_fraud against what this run planted" in stdout
    for pattern in rings.FRAUD:  # its row: planted, flagged, found, precision, recall
        assert re.search(rf"│ {pattern} +│ +\d+ +│ +\d+ +│ +\d+ +│ +[\d.]+ +│ +[\d.]+ +│", stdout), pattern


def test_bazaar_compact_runs_dagsters_job_and_keeps_every_row_in_few_files(demo):
    """`bazaar compact --day` for the demo's day (today: the sinks go on writing) through the running
    Dagster's compaction job: each table's day in few files, every row still read, in both shapes
    (on HDFS in the cluster one)."""
    s, truth, _, env = demo
    day = datetime.now(timezone.utc).date().isoformat()
    tables = ["trades", "trade_sides", "player_states", "state_summaries", "offers"]
    # two trades more, each landed before the next: the day holds files of several batches, even when the
    # sinks, started late on a busy machine, drained the whole demo in one
    auth = {"Authorization": f"Bearer {s.api_key}"}
    for n in (1, 2):
        r = requests.post(f"{s.engine_url}/trade", headers=auth, timeout=30,
                          json={"player_1": {"player_id": 1, "gold_traded": 1}, "player_2": {"player_id": 2}})
        assert r.status_code in (200, 409), r.text
        deadline = time.monotonic() + 120
        while warehouse.execute(s.trino, "select count(distinct trade_id) from trades").iloc[0, 0] < \
                len(answered(truth)) + n and time.monotonic() < deadline:
            time.sleep(1)
    # both sinks hold every event the engine counted (the player_states sink may land its last states after
    # the trades sink landed the trades): what compaction must keep is all there before it is counted
    store = make_store(s.redis)
    try:
        warehouse.wait_until_complete(s.trino, store, timeout=300)
    finally:
        store.r.close()
    before = warehouse.day_layout(s.trino, tables, day)
    out = subprocess.run([sys.executable, "-m", "bazaar", "compact", "--day", day], env=env, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    after = warehouse.day_layout(s.trino, tables, day)
    assert after.rows.to_dict() == before.rows.to_dict()
    assert after.files.max() == 1 and before.files.sum() > len(tables), (before, after)
    assert "files before" in out.stdout and f"{before.files['trades']:,}" in out.stdout
    trades = warehouse.execute(s.trino, "select count(distinct trade_id) from trades").iloc[0, 0]
    assert trades == len(answered(truth)) + 2


def test_bazaar_reports_materializes_the_named_reports_through_dagster_and_prints_them(demo):
    s, _, _, env = demo
    meta = lambda name: reports.load_meta(s.reports.reports_dir, name)["computed_at_s"]  # noqa: E731
    before = {name: meta(name) for name in ("trade_count", "suspected_fraud", "class_wealth")}
    out = subprocess.run([sys.executable, "-m", "bazaar", "reports", "--only", "trade_count,suspected_fraud",
                          "--only", "trade_count"], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert meta("trade_count") > before["trade_count"] and meta("suspected_fraud") > before["suspected_fraud"]
    assert meta("class_wealth") == before["class_wealth"]  # not asked for
    assert out.stdout.count("trade_count:") == 1 and "suspected_fraud:" in out.stdout  # asked twice, shown once
    assert "class_wealth" not in out.stdout
    assert "materialized by Dagster run" in out.stdout
    wrong = subprocess.run([sys.executable, "-m", "bazaar", "reports", "--only", "richest_dragons"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert wrong.returncode == 2 and "unknown report richest_dragons" in wrong.stderr


def test_prometheus_scrapes_every_process_and_counts_what_the_engine_counted(demo):
    """Every target of the stack's Prometheus up, and its sums agreeing with the engine's own counters
    in Redis (bumped by the commit script, not by the metrics' code)."""
    s, _, _, _ = demo
    prom = PrometheusService(s)
    deadline, targets = time.monotonic() + 120, []
    while time.monotonic() < deadline:
        targets = prom.targets()
        if targets and all(t["health"] == "up" for t in targets):
            break
        time.sleep(2)
    jobs = {t["labels"]["job"] for t in targets if t["health"] == "up"}
    assert jobs == {"engine", "relay", "sinks", "kafka", "metastore", "trino", "reports"}, targets
    assert len(targets) == 7 + s.local.kafka_brokers, targets
    counted = make_store(s.engine).counters()
    want = {"executed": counted.get("trades_executed", 0), "rejected": counted.get("trades_rejected", 0)}
    got = {}
    while time.monotonic() < deadline + 60:  # a scrape every few seconds: the last trades show within one
        got = {r["metric"]["outcome"]: int(float(r["value"][1]))
               for r in prom.query("sum by (outcome) (bazaar_engine_trades_total)")}
        if got == want:
            break
        time.sleep(2)
    assert got == want and want["executed"] > 0
    events = sum(v for k, v in counted.items() if k in ("trades", "player_states", "offer_events"))
    sent = prom.query("sum(bazaar_relay_events_sent_total)")
    assert int(float(sent[0]["value"][1])) >= events  # re-sent ones (a relay restart) count too
    written = {r["metric"]["sink"]: float(r["value"][1]) for r in prom.query("bazaar_sink_records_written_total")}
    assert set(written) == {"trades", "player_states"} and all(v > 0 for v in written.values())
    reports_done = prom.query("count(bazaar_report_last_success_timestamp_seconds)")
    assert int(float(reports_done[0]["value"][1])) == len(reports.REPORTS)


def test_the_dashboard_draws_the_last_hour_and_its_numbers_move_with_trades(demo):
    """/dashboard in a real browser (Debian's chromium): three charts drawn from economy_minutes and
    the pipeline's health from Prometheus; then trades over HTTP, and the page's count of trades
    executed in the last hour goes up by as many as the engine executed, without a reload."""
    from tests.e2e.test_dagster_ui import CHROMIUM, CHROMIUM_FLAGS
    from playwright.sync_api import sync_playwright

    s, _, _, _ = demo
    assert CHROMIUM, "Debian's chromium is installed by `make install-test`"
    base = s.reports_url.rsplit("/", 1)[0]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{base}/dashboard", wait_until="networkidle")
            page.wait_for_function("document.querySelectorAll('.charts canvas').length >= 3", timeout=60_000)
            sizes = page.eval_on_selector_all(".charts canvas", "cs => cs.map(c => [c.width, c.height])")
            assert len(sizes) == 3 and all(w > 100 and h > 100 for w, h in sizes), sizes
            assert page.inner_text("#error") == ""
            assert page.inner_text("#targets-down") == "0" and page.inner_text("#alerts") == "none"
            before = int(page.inner_text("#trades-executed").replace(",", ""))
            shown = warehouse.execute(s.trino, "select sum(trades_executed) from economy_minutes where minute >= "
                                               "current_timestamp - interval '60' minute").iloc[0, 0]
            assert before > 0 and before == int(shown)  # the page shows what the view holds
            headers = {"Authorization": f"Bearer {s.api_key}"}
            executed = sum(requests.post(f"{s.engine_url}/trade", headers=headers, timeout=10, json={
                "player_1": {"player_id": 3, "gold_traded": 1}, "player_2": {"player_id": 4}}).status_code == 200
                for _ in range(5))
            assert executed == 5
            page.wait_for_function(f"Number(document.getElementById('trades-executed').textContent"
                                   f".replace(/,/g, '')) >= {before + executed}", timeout=90_000)
            assert int(page.inner_text("#trades-executed").replace(",", "")) == before + executed
        finally:
            browser.close()


def trade_through(s, n: int) -> int:
    """`n` trades between the demo's first two players over HTTP, each retried through a restart;
    returns how many the engine decided."""
    headers = {"Authorization": f"Bearer {s.api_key}"}
    done = 0
    for _ in range(n):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                r = requests.post(f"{s.engine_url}/trade", headers=headers, timeout=10,
                                  json={"player_1": {"player_id": 1, "gold_traded": 1}, "player_2": {"player_id": 2}})
            except requests.ConnectionError:
                r = None
            if r is not None and r.status_code in (200, 409):
                done += 1
                break
            time.sleep(0.5)
    return done


def test_every_service_killed_is_started_again_by_its_keeper_and_nothing_is_lost(demo):
    """SIGKILL of each service's own process, one after another as soon as the one before is running
    again (healthy or not: failures cascade, as they do), while trades go on: each is started again
    without `bazaar up` and its restart counted; then every service is healthy, and the tables hold
    every event the engine counted, each once."""
    s, _, _, env = demo
    decided, kept = 0, services(s)
    before = {svc.name: svc.restarts() for svc in kept}
    for svc in kept:
        deadline = time.monotonic() + 60  # a service an earlier kill took down may be waiting to start again
        while time.monotonic() < deadline and svc.main_pid() is None:
            time.sleep(0.2)
        killed = svc.crash()
        assert killed is not None, f"{svc.name} has no process to kill"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and svc.main_pid() in (None, killed):
            time.sleep(0.2)
        assert svc.main_pid() not in (None, killed), f"{svc.name} was not started again:\n{svc.log_tail(30)}"
        decided += trade_through(s, 3)
    assert decided == 3 * len(kept)
    for svc in kept:
        deadline = time.monotonic() + svc.startup_timeout + 120
        while time.monotonic() < deadline and not svc.is_healthy():
            time.sleep(1)
        assert svc.is_healthy(), f"{svc.name} not healthy again:\n{svc.log_tail(30)}"
        assert svc.restarts() >= before[svc.name] + 1
        assert "keeper:" in svc.log_path.read_text(errors="replace")
    found = warehouse.completeness(s.trino, make_store(s.engine), drain_s=300)
    assert found.complete, found
    status = subprocess.run([sys.executable, "-m", "bazaar", "status"], env=env, capture_output=True, text=True,
                            timeout=300)
    assert status.returncode == 0, status.stdout[-3000:]
    assert "at a glance (Prometheus)" in status.stdout
    twice = warehouse.execute(s.trino, "select (select count(*) - count(distinct event_id) from state_summaries), "
                                       "(select count(*) from (select trade_id from trade_sides group by 1 "
                                       "having count(*) <> 2))").values.tolist()
    assert twice == [[0, 0]]
