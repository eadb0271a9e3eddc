"""What the simulator plants: rings of fraud in five shapes, and honest groups shaped like them.

Each ring is a script of trades its members play in order (a step starts only once the one before
it is answered), interleaved with the economy's honest trading. The shapes, as studies of real
money trading and gold farming in commercial MMORPGs describe them:

- `pair`: a cheater passes its valuables to one or two accomplices, again and again;
- `star`: many farmers feed one banker, each of them more than once;
- `chain`: farmers feed a merchant, who passes on what it got to a banker;
- `mule`: fresh accounts each take a delivery from a source and pass all of it on to a hub;
- `rmt`: a real-money seller sells cheap items to many buyers for far more gold than they are worth.

And the honest look-alikes that must not be flagged:

- `friends`: two players giving each other valuable gifts, turn about;
- `guild`: a guild bank receiving small donations from many members;
- `starter`: a veteran helping fresh accounts with a starting sum, which they keep;
- fair trades priced anywhere from half to twice an item's worth (`bazaar.simulate`'s purchases).

Pure: states in, request bodies out. The ground truth is `roles()`: player id -> (pattern, role).
"""

from __future__ import annotations

import math
import random
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Optional

FRAUD = ("pair", "star", "chain", "mule", "rmt")
LOOKALIKES = ("friends", "guild", "starter")
RICH = ("noble", "merchant")  # accounts holding more than play explains: what cheaters move
MIN_VALUE = 1_000  # what the lopsided reports count as worth noticing (orchestration.warehouse.DEFAULT_PARAMS)
CHEAP = 100  # what an rmt seller sells: an item worth at most this
DONATION = (20, 300)  # a guild member's gold donation


@dataclass(frozen=True)
class Member:
    key: str  # unique in its ring: "banker", "farmer-0"
    role: str
    player_class: str = "random"
    fresh: bool = False  # an account made while trading, just before its ring first needs it
    scripted: bool = False  # trades only in its ring's script (fresh accounts too): what it passes on stays whole

    @property
    def only_scripted(self) -> bool:
        return self.fresh or self.scripted


@dataclass(frozen=True)
class Step:
    move: str  # create | cheat | deliver | pass | overpay | gift | donate | help
    giver: str  # member key (for create: the member made)
    receiver: str = ""
    attempt: int = 0  # a step the rules refused (its giver traded the goods away meanwhile) is tried again


@dataclass
class Ring:
    ring_id: int
    pattern: str
    members: list[Member]
    steps: deque
    ids: dict[str, int] = field(default_factory=dict)  # member key -> player id, once made
    received: dict[str, Counter] = field(default_factory=dict)  # member key -> what this ring gave it
    acted: set = field(default_factory=set)  # member keys that took part in an executed trade of the ring
    busy: bool = False

    @property
    def fraud(self) -> bool:
        return self.pattern in FRAUD

    def member(self, key: str) -> Member:
        return next(m for m in self.members if m.key == key)


def _members(role: str, n: int, player_class: str = "random", fresh: bool = False) -> list[Member]:
    return [Member(f"{role}-{i}", role, player_class, fresh) for i in range(n)]


def build_ring(pattern: str, ring_id: int, rng: random.Random) -> Ring:
    """One ring of `pattern` with its members and its script."""
    rich = lambda: rng.choice(RICH)  # noqa: E731
    steps: list[Step] = []
    if pattern == "pair":
        # the report's roles: the cheater gives, its accomplices receive
        # a noble's valuables and gold: enough to pass on time after time, whatever it also trades
        members = [Member("cheater", "giver", "noble"), *[Member(m.key, "receiver") for m in _members("accomplice", rng.randint(1, 2))]]
        for a in members[1:]:
            steps += [Step("cheat", "cheater", a.key)] * rng.randint(2, 3)
        rng.shuffle(steps)
    elif pattern == "star":
        members = [Member("banker", "banker", rich()), *[Member(m.key, m.role, rich()) for m in _members("farmer", rng.randint(4, 6))]]
        for _ in range(rng.randint(2, 3)):
            steps += [Step("deliver", f.key, "banker") for f in members[1:]]
    elif pattern == "chain":
        members = [Member("merchant", "merchant", rich(), scripted=True), Member("banker", "banker", rich()),
                   *[Member(m.key, m.role, rich()) for m in _members("farmer", rng.randint(2, 3))]]
        for _ in range(rng.randint(2, 3)):
            steps += [Step("deliver", f.key, "merchant") for f in members[2:]]
            steps.append(Step("pass", "merchant", "banker"))
    elif pattern == "mule":
        members = [Member("source", "source", "noble"), Member("hub", "hub", rich()),
                   *_members("mule", rng.randint(4, 5), fresh=True)]
        for m in members[2:]:
            steps += [Step("create", m.key), Step("deliver", "source", m.key), Step("pass", m.key, "hub")]
    elif pattern == "rmt":
        members = [Member("seller", "seller", "merchant"),  # a merchant's kit: twenty loaves and ten torches
                   *[Member(m.key, m.role, rich()) for m in _members("buyer", rng.randint(4, 7))]]
        for b in members[1:]:
            steps += [Step("overpay", b.key, "seller")] * rng.randint(1, 2)
        rng.shuffle(steps)
    elif pattern == "friends":
        members = [Member("friend-0", "friend", rich()), Member("friend-1", "friend", rich())]
        for turn in range(2 * rng.randint(1, 2)):
            steps.append(Step("gift", f"friend-{turn % 2}", f"friend-{1 - turn % 2}"))
    elif pattern == "guild":
        members = [Member("bank", "bank"), *_members("member", rng.randint(6, 10))]
        for m in members[1:]:
            steps += [Step("donate", m.key, "bank")] * rng.randint(1, 2)
        rng.shuffle(steps)
    elif pattern == "starter":
        members = [Member("veteran", "veteran", rich()), *_members("newcomer", rng.randint(2, 4), fresh=True)]
        for m in members[1:]:
            steps += [Step("create", m.key), Step("help", "veteran", m.key)]
    else:
        raise ValueError(f"unknown pattern {pattern!r}: one of {', '.join(FRAUD + LOOKALIKES)}")
    return Ring(ring_id, pattern, members, deque(steps))


def plan_rings(players: int, fraud_share: float, lookalike_share: float, rng: random.Random,
               patterns: tuple[str, ...] = FRAUD, lookalikes: tuple[str, ...] = LOOKALIKES) -> list[Ring]:
    """Rings of `patterns` in turn until they hold `fraud_share` of `players` (at least one of each when
    the share is above zero), then look-alike groups for `lookalike_share` the same way; never more
    than half the players."""
    rings: list[Ring] = []
    cap = players // 2
    for kinds, share in ((patterns, fraud_share), (lookalikes, lookalike_share)):
        if share <= 0 or not kinds:
            continue
        budget, used, turn = math.ceil(players * share), 0, 0
        while used < budget or turn < len(kinds):
            ring = build_ring(kinds[turn % len(kinds)], len(rings), rng)
            if sum(len(r.members) for r in rings) + len(ring.members) > cap:
                break
            rings.append(ring)
            used += len(ring.members)
            turn += 1
    return rings


def roles(rings: list[Ring]) -> dict[int, tuple[str, str]]:
    """Player id -> (pattern, role), for every ring member that took part in an executed trade of its
    ring (one whose every step found nothing to give, or whose account could not be made, did nothing
    its pattern can be seen by)."""
    return {pid: (ring.pattern, ring.member(key).role) for ring in rings for key, pid in ring.ids.items()
            if key in ring.acted}


# ---- the moves: (giver's state, receiver's state, what the ring gave the giver) -> a trade body ----------

def body(giver: dict, receiver: dict, items: list[dict], gold: int, back_items: list[dict] = (),
         back_gold: int = 0) -> dict:
    return {"player_1": {"player_id": giver["player_id"], "items_traded": list(items), "gold_traded": gold},
            "player_2": {"player_id": receiver["player_id"], "items_traded": list(back_items),
                         "gold_traded": back_gold}}


def _top(state: dict) -> Optional[dict]:
    items = state["inventory"]["items"]
    return max(items, key=lambda it: (it["value"], it["item_id"])) if items else None


def _token(receiver: dict, rng: random.Random) -> int:
    """The few gold a cheater's partner hands back, to make the trade look like one."""
    return min(rng.choice([0, 0, 1, 5]), receiver["gold"])


def cheat(giver: dict, receiver: dict, got: Counter, rng: random.Random) -> Optional[dict]:
    """All of the cheater's most valuable item when that is worth noticing, else most of its gold, for a token."""
    top = _top(giver)
    if top and top["value"] * top["quantity"] >= 2 * MIN_VALUE:  # still lopsided at half its catalog value
        return body(giver, receiver, [{"item_id": top["item_id"], "quantity": top["quantity"]}], 0,
                    back_gold=_token(receiver, rng))
    gold = int(giver["gold"] * rng.uniform(0.2, 0.4))  # a share of its loot at a time: enough left for the next
    if gold >= MIN_VALUE:
        return body(giver, receiver, [], gold, back_gold=_token(receiver, rng))
    return None


def deliver(giver: dict, receiver: dict, got: Counter, rng: random.Random) -> Optional[dict]:
    """A farmer's delivery: one unit of its most valuable item when that is worth noticing, else a few
    thousand gold."""
    top = _top(giver)
    if top and top["value"] >= 2 * MIN_VALUE:  # still worth noticing at the market's half of the catalog
        return body(giver, receiver, [{"item_id": top["item_id"], "quantity": 1}], 0, back_gold=_token(receiver, rng))
    if giver["gold"] >= MIN_VALUE:
        gold = min(giver["gold"], rng.randint(MIN_VALUE * 2, MIN_VALUE * 5))
        return body(giver, receiver, [], gold, back_gold=_token(receiver, rng))
    return None


def pass_on(giver: dict, receiver: dict, got: Counter, rng: random.Random) -> Optional[dict]:
    """Everything the ring gave the giver that it still holds, to the next in line."""
    held = {it["item_id"]: it["quantity"] for it in giver["inventory"]["items"]}
    items = [{"item_id": i, "quantity": min(n, held[i])} for i, n in sorted((k, v) for k, v in got.items() if k != "gold")
             if n > 0 and held.get(i)]
    gold = max(0, min(got.get("gold", 0), giver["gold"]))
    if not items and not gold:
        return None
    return body(giver, receiver, items, gold)


def overpay(buyer: dict, seller: dict, got: Counter, rng: random.Random) -> Optional[dict]:
    """A buyer pays a few thousand gold for one of the seller's cheap items."""
    cheap = [it for it in seller["inventory"]["items"] if it["value"] <= CHEAP]
    if not cheap:
        return None
    item = rng.choice(cheap)
    price = min(buyer["gold"], max(MIN_VALUE, item["value"] * rng.randint(40, 400)))
    if price < MIN_VALUE:
        return None
    return body(seller, buyer, [{"item_id": item["item_id"], "quantity": 1}], 0, back_gold=price)


def gift(giver: dict, receiver: dict, got: Counter, rng: random.Random) -> Optional[dict]:
    """A friend's gift: one to three thousand gold."""
    gold = min(giver["gold"], rng.randint(MIN_VALUE, 3 * MIN_VALUE))
    return body(giver, receiver, [], gold) if gold >= MIN_VALUE else None


def donate(giver: dict, receiver: dict, got: Counter, rng: random.Random) -> Optional[dict]:
    """A guild member's donation: a little gold, else its cheapest item."""
    if giver["gold"] >= DONATION[0]:
        return body(giver, receiver, [], min(giver["gold"], rng.randint(*DONATION)))
    items = [it for it in giver["inventory"]["items"] if it["value"] <= DONATION[1]]
    if items:
        cheap = min(items, key=lambda it: (it["value"], it["item_id"]))
        return body(giver, receiver, [{"item_id": cheap["item_id"], "quantity": 1}], 0)
    return None


def help_(giver: dict, receiver: dict, got: Counter, rng: random.Random) -> Optional[dict]:
    """A veteran's starting sum for a newcomer: one to two thousand gold, once."""
    gold = min(giver["gold"], rng.randint(MIN_VALUE, 2 * MIN_VALUE))
    return body(giver, receiver, [], gold) if gold >= MIN_VALUE else None


MOVES = {"cheat": cheat, "deliver": deliver, "pass": pass_on, "overpay": overpay, "gift": gift, "donate": donate,
         "help": help_}


def goods_given(side: dict) -> Counter:
    """What one side of a trade body gives, as a ring keeps it: units by item id, and gold."""
    given = Counter({line["item_id"]: line["quantity"] for line in side["items_traded"]})
    if side["gold_traded"]:
        given["gold"] = side["gold_traded"]
    return given


def evaluate(flagged: list[tuple[int, str]], planted: dict[int, tuple[str, str]], players: set[int]) -> list[dict]:
    """Per fraud pattern, how the report (`flagged`: (player id, pattern) rows) did against what was
    `planted` (player id -> (pattern, role)), counting only this run's `players` (a reused stack holds
    earlier ones): planted, flagged, found (flagged with the pattern planted), precision and recall
    (None where nothing was flagged, or planted); then the honest look-alikes flagged as anything."""
    mine = {(p, pattern) for p, pattern in flagged if p in players}
    rows = []
    for pattern in FRAUD:
        truth = {p for p, (pat, _) in planted.items() if pat == pattern}
        said = {p for p, pat in mine if pat == pattern}
        found = truth & said
        rows.append({"pattern": pattern, "planted": len(truth), "flagged": len(said), "found": len(found),
                     "precision": round(len(found) / len(said), 3) if said else None,
                     "recall": round(len(found) / len(truth), 3) if truth else None})
    honest = {p for p, (pat, _) in planted.items() if pat in LOOKALIKES}
    wrongly = honest & {p for p, _ in mine}
    rows.append({"pattern": "look-alikes (honest)", "planted": len(honest), "flagged": len(wrongly), "found": 0,
                 "precision": None, "recall": None})
    return rows
