"""Shared by the tests that run the pipeline: a pipeline of its own on the test stack, and the
ledger of what the engine answered over HTTP (the ground truth the tables must match)."""

import random
import statistics
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from datetime import datetime

from confluent_kafka import Producer

from bazaar.stack import RelayService, SinkService
from bazaar.stack.api_key import ensure_stack_key
from engine import catalog, create_app
from orchestration import warehouse
from orchestration.topic import ensure_topic


def authorized(client, key: str):
    """A Flask test client that sends `Authorization: Bearer <key>` with every request."""
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client


def kafka_write(bootstrap: str, topic: str, login: dict, value: bytes):
    """One record written to `topic` with librdkafka logged in as `login` (its settings,
    `KafkaLogin.librdkafka`; {}: anonymous). Returns the error the write ended with (None: written)
    and the client errors seen meanwhile (a failed login, say)."""
    delivered, errors = [], []
    producer = Producer({"bootstrap.servers": bootstrap, **login, "message.timeout.ms": 6000,
                         "error_cb": errors.append, "log_level": 0})
    producer.produce(topic, value, on_delivery=lambda err, msg: delivered.append(err))
    producer.flush(15)
    assert delivered, "the write neither landed nor failed within 15 s"
    return delivered[0], errors


def shared_credentials(stack) -> dict:
    """The credentials of `stack`'s Redis, Kafka and Trino (kept in its home), for a copy of it with a
    home of its own that uses the same services."""
    topic, trino = stack.topic, stack.trino
    return {"redis_password": stack.redis.redis_password, "kafka_admin_password": topic.kafka_admin_password,
            "relay_kafka_password": topic.relay_kafka_password, "sink_kafka_password": topic.sink_kafka_password,
            "trino_ca_file": trino.trino_ca_file, "trino_password": trino.trino_password,
            "trino_owner_password": trino.trino_owner_password}


def pipeline_stack(stack, home, **extra):
    """The test stack with a topic, Redis namespace, Hive database and home of this pipeline's own;
    its Redis, Kafka and Trino are the stack's, with the stack's credentials."""
    name = f"p{uuid.uuid4().hex[:10]}"
    return stack.replace(home=home, namespace=name, topic=name, database=name, **shared_credentials(stack), **extra)


@contextmanager
def running_pipeline(s, *more, provision=True):
    """The pipeline's topic provisioned (unless the test did), its relay and two sinks (and `more`
    services) running; stopped afterwards, in reverse order."""
    if provision:
        ensure_topic(s.topic)
    services = [RelayService(s), SinkService(s, "trades"), SinkService(s, "player_states"), *more]
    try:
        for svc in services:
            svc.start()
        yield s
    finally:
        for svc in reversed(services):
            svc.stop()


class Ledger:
    """What the engine answered over HTTP: the ground truth the tables must match."""

    def __init__(self, s):
        self.client = authorized(create_app(s.engine).test_client(), ensure_stack_key(s))
        self.states: list[dict] = []
        self.trades: list[tuple[dict, dict]] = []  # (request, answer); an accepted offer as the trade it made
        self.refused: list[tuple[str, str]] = []  # (offer id, fail_reason) of each accept the rules refused
        self.offers: dict[str, dict] = {}  # offer id -> the offer as the engine last answered it

    def create(self, n, rng):
        for _ in range(n):
            self.states.append(self.client.put("/create_player", json={"player_class": rng.choice(
                ["merchant", "noble", "monk", "random"])}).get_json())

    def trade(self, n, rng):
        ids = sorted({s["player_id"] for s in self.states})
        for _ in range(n):
            a, b = rng.sample(ids, 2)
            lines = [{"item_id": rng.choice([1, 3, 10, 17, 18, 20, 24, 99]), "quantity": rng.randint(1, 2)}
                     for _ in range(rng.choice([0, 1, 1, 2]))]
            body = {"player_1": {"player_id": a, "items_traded": lines},
                    "player_2": {"player_id": b, "gold_traded": rng.choice([0, 50, 5_000, 400_000])}}
            answer = self.client.post("/trade", json=body).get_json()
            self.trades.append((body, answer))
            if answer["status"] == "executed":
                self.states += [answer["player_1"], answer["player_2"]]

    def offer_round(self, n, rng, expiring=2, expire_timeout=30):
        """`n` offers between players (most accepted, some cancelled, some left open), and `expiring` more
        from players who then do nothing, left to expire by the relay's sweep (waited for)."""
        ids = sorted({s["player_id"] for s in self.states})
        quiet, busy = ids[:expiring], ids[expiring:]
        # 3 s: the round goes on meanwhile; their makers take no part in it, so each one's last state is its expiry's
        ending = {}  # offer id -> its maker, for the offers that opened (an opening refused changed nothing)
        for maker in quiet:
            oid = self._open(maker, rng.choice(busy), rng, 3)
            if oid:
                ending[oid] = maker
        for _ in range(n):
            a, b = rng.sample(busy, 2)
            oid = self._open(a, b, rng, 600)
            if oid is None:
                continue
            pick = rng.random()
            if pick < 0.6:
                r = self.client.post(f"/offers/{oid}/accept")
                assert r.status_code in (200, 409), r.get_data(as_text=True)
                answer = r.get_json()
                if r.status_code == 409:  # refused by a rule: an offer event, the offer left open
                    assert answer["error"] == "accept_refused", answer
                    self.refused.append((oid, answer["fail_reason"]))
                    continue
                self.trades.append((self._as_trade(self.offers[oid]), answer))
                self.states += [answer["player_1"], answer["player_2"]]
            elif pick < 0.8:
                r = self.client.post(f"/offers/{oid}/cancel")
                assert r.status_code == 200
                self.states.append(r.get_json()["maker_state"])  # its goods back from escrow
        # and one accept the rules surely refuse (the addressee cannot pay 10**9 gold): a refused offer
        # event, the offer left open, whatever the players' random starting kits made of the round above
        a, b = busy[0], busy[1]
        held = self.client.get(f"/players/{a}").get_json()["inventory"]["items"]
        give = {"items": [{"item_id": held[0]["item_id"], "quantity": 1}] if held else [], "gold": 0}
        r = self.client.post("/offers", json={"from_player_id": a, "to_player_id": b, "give": give,
                                              "want": {"items": [], "gold": 10**9}, "expires_in_s": 600})
        assert r.status_code == 201, r.get_data(as_text=True)
        offer = r.get_json()
        self.states.append(offer.pop("maker_state"))
        self.offers[offer["offer_id"]] = offer
        r = self.client.post(f"/offers/{offer['offer_id']}/accept")
        assert r.status_code == 409 and r.get_json()["error"] == "accept_refused", r.get_data(as_text=True)
        self.refused.append((offer["offer_id"], r.get_json()["fail_reason"]))
        deadline, waiting = time.monotonic() + expire_timeout, list(ending)
        while waiting and time.monotonic() < deadline:
            waiting = [o for o in waiting if self.client.get(f"/offers/{o}").get_json()["status"] == "open"]
            time.sleep(0.2)
        assert not waiting, f"offers {waiting} did not expire: is the relay running?"
        for maker in ending.values():  # its state once its offer expired (nothing else touched it)
            self.states.append(self.client.get(f"/players/{maker}").get_json())
        for oid in self.offers:
            self.offers[oid] = self.client.get(f"/offers/{oid}").get_json()

    def _open(self, maker, to, rng, expires_in_s):
        held = self.client.get(f"/players/{maker}").get_json()["inventory"]["items"]
        give = {"items": [{"item_id": it["item_id"], "quantity": 1} for it in rng.sample(held, min(len(held), 1))],
                "gold": rng.choice([0, 10, 500])}
        want = {"items": [], "gold": rng.choice([0, 5, 100, 10**9])}  # 10**9: an accept the rules refuse
        r = self.client.post("/offers", json={"from_player_id": maker, "to_player_id": to, "give": give,
                                              "want": want, "expires_in_s": expires_in_s})
        if r.status_code != 201:
            assert r.status_code == 409, r.get_data(as_text=True)
            return None
        offer = r.get_json()
        self.states.append(offer.pop("maker_state"))  # its goods into escrow
        self.offers[offer["offer_id"]] = offer
        return offer["offer_id"]

    @staticmethod
    def _as_trade(offer) -> dict:
        """An offer as the /trade request its acceptance amounts to (the maker is player 1)."""
        def side(pid, goods):
            return {"player_id": pid, "gold_traded": goods["gold"],
                    "items_traded": [{"item_id": i["item_id"], "quantity": i["quantity"]} for i in goods["items"]]}
        return {"player_1": side(offer["from_player_id"], offer["give"]),
                "player_2": side(offer["to_player_id"], offer["want"])}

    def offer_events(self) -> int:
        """Offer events the engine appended: each offer opened, each accept the rules refused, and each
        offer's end unless still open."""
        return sum(1 + (o["status"] != "open") for o in self.offers.values()) + len(self.refused)

    def trade_rows(self) -> Counter:
        return trade_rows(body for body, _ in self.trades)

    def state_rows(self) -> int:
        return sum(max(1, len(s["inventory"]["items"])) for s in self.states)


def trade_rows(bodies) -> Counter:
    """(item id, name) -> rows, as the flattened trades table must hold them for these requests:
    a row per side and distinct item, one with no item for a side giving none."""
    rows = Counter()
    for body in bodies:
        for side in ("player_1", "player_2"):
            merged = {line["item_id"] for line in body[side].get("items_traded", [])}
            if not merged:
                rows[(None, None)] += 1
            for item_id in merged:
                item = catalog.get_item(item_id)
                rows[(item_id, item.name if item else None)] += 1
    return rows


def value_given(side: dict) -> int:
    """Catalog value of the items one side of a trade request gives, plus its gold."""
    return sum(catalog.get_item(line["item_id"]).value * line.get("quantity", 1)
               for line in side.get("items_traded", [])) + side.get("gold_traded", 0)


def lopsided(trades, ratio=10, min_value=1_000) -> dict[str, tuple[int, int, int, int]]:
    """trade id -> (giver, receiver, value given, value received) for the executed trades among
    (request, answer) pairs where one side gave at least `ratio` times what it got."""
    found = {}
    for body, answer in trades:
        if answer.get("status") != "executed":
            continue
        for giver, receiver in (("player_1", "player_2"), ("player_2", "player_1")):
            given, received = value_given(body[giver]), value_given(body[receiver])
            if given >= min_value and given >= ratio * max(received, 1):
                found[answer["trade_id"]] = (body[giver]["player_id"], body[receiver]["player_id"], given, received)
    return found


def funnel(offers) -> list[list]:
    """offers_funnel as the engine's answers make it: per day an offer opened, the offers opened,
    accepted, cancelled, expired and still open, and the median seconds from opening to acceptance."""
    days: dict[str, list[dict]] = {}
    for o in offers:
        days.setdefault(o["created_at"][:10], []).append(o)

    def at(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    rows = []
    for day, group in sorted(days.items()):
        status = Counter(o["status"] for o in group)
        waits = [(at(o["closed_at"]) - at(o["created_at"])).total_seconds() for o in group if o["status"] == "accepted"]
        rows.append([day, len(group), status["accepted"], status["cancelled"], status["expired"], status["open"],
                     statistics.median(waits) if waits else None])
    return rows


def wait_for(s, sql, expected, timeout=120):
    deadline, got = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        got = warehouse.execute(s.trino, sql).values.tolist()
        if got == expected:
            return
        time.sleep(1)
    raise AssertionError(f"{sql}: {got} != {expected}")


def counts_settle(s, ledger):
    n_trades = len(ledger.trades)
    wait_for(s, "select count(distinct trade_id), count(*) from trades",
             [[n_trades, sum(ledger.trade_rows().values())]])
    wait_for(s, "select count(distinct event_id), count(*) from player_states",
             [[len(ledger.states), ledger.state_rows()]])
    # the summary tables, which each sink writes a moment after its table
    wait_for(s, "select count(distinct trade_id), count(*) from trade_sides", [[n_trades, 2 * n_trades]])
    wait_for(s, "select count(distinct event_id), count(*) from state_summaries",
             [[len(ledger.states), len(ledger.states)]])
    wait_for(s, "select count(distinct event_id), count(*) from offers",
             [[ledger.offer_events(), ledger.offer_events()]])


def played_ledger(s, players: int, trades: int, seed: int, offers: int = 0) -> Ledger:
    """Players, trades and offers through the engine, waited for until the tables hold them all."""
    book = Ledger(s)
    rng = random.Random(seed)
    book.create(players, rng)
    book.trade(trades, rng)
    if offers:
        book.offer_round(offers, rng)
    counts_settle(s, book)
    return book


def trade_rows_by_id(trades) -> dict[str, int]:
    """trade id -> the rows `trades` must hold for it: per side, one per distinct item (one if none)."""
    return {answer["trade_id"]: sum(max(1, len({line["item_id"] for line in body[side].get("items_traded", [])}))
                                    for side in ("player_1", "player_2"))
            for body, answer in trades}


def reconcile(s, ledger, timeout=120) -> None:
    """Every table against the engine's answers, by id where the answers carry one: each trade with
    its rows in `trades` and its two sides in `trade_sides`, no other trade; every player state,
    offer event and summary row once (counted as `counts_settle` counts them, then no row twice)."""
    want = trade_rows_by_id(ledger.trades)
    checks = {"trades": ("select trade_id, count(*) from trades group by 1", want),
              "trade_sides": ("select trade_id, count(*) from trade_sides group by 1", {t: 2 for t in want})}
    for table, (sql_text, expected) in checks.items():
        deadline, got = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            got = dict(warehouse.execute(s.trino, sql_text).values.tolist())
            if got == expected:
                break
            time.sleep(1)
        assert got == expected, (f"{table}: {len(set(expected) - set(got))} trades missing, "
                                 f"{len(set(got) - set(expected))} unknown, "
                                 f"{sum(1 for t in expected if t in got and got[t] != expected[t])} with other row counts")
    counts_settle(s, ledger)
    twice = warehouse.execute(s.trino, "select count(*) from (select event_id, item_held_item_id from player_states "
                                       "group by 1, 2 having count(*) > 1)").values.tolist()
    assert twice == [[0]]
