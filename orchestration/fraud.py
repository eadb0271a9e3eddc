"""The suspected_fraud report: fraud patterns read from the trade graph's lopsided flows.

Trino computes the flows (`sql/fraud_flows.sql`: per giver, receiver and kind, the lopsided trades and
the value they moved, valued at the market, with each end's executed trades in all), in one query;
the shapes are read from them here, where a graph is easier said than in SQL (a query that
refers to the flows a dozen times makes Trino plan the scan a dozen times):

- `rmt`: a seller whom at least `rmt_min_buyers` buyers overpaid (roles seller, buyer);
- `mule`: accounts whose every trade is a transfer in or on, passing on most of what they got, at least
  `mule_min` of them into one hub (roles mule, hub, and source: one that fed two mules or more);
- `chain`: a merchant taking transfers from a farmer and passing on at least half of their value to a
  banker, `min_repeats` times or more each way (roles farmer, merchant, banker);
- `star`: a banker keeping what at least `star_min_farmers` farmers each transferred to it
  `min_repeats` times or more (roles farmer, banker);
- `pair`: transfers one way between two players `min_repeats` times or more (roles giver, receiver).

Transfers that went both ways between two players, a quarter of the value or more coming back, are an
exchange (friends' gifts, turn about): no shape is read from them.

A player in several shapes is reported in the first of that order. A row per flagged player, highest
score first: its pattern, role, score (the value of its pattern's flows it took part in, in units of
`min_value`: a mule's or a merchant's counts what it took in and what it passed on) and the evidence
(partners, their ids, value moved, lopsided trades): the flows its pattern was read from.
"""

from __future__ import annotations

import pandas as pd

ORDER = ("rmt", "mule", "chain", "star", "pair")
COLUMNS = ["player_id", "pattern", "role", "score", "partners", "partner_ids", "value_moved", "trades"]
PASSES_ON = 0.7  # a mule passes on at least this share of what it got
MERCHANT_PASSES_ON = 0.5  # a chain's merchant at least this share; a star's banker less
PAIR_BACK = 0.25  # a pair's flow back is less than this share of the flow out


def detect(flows: pd.DataFrame, min_value: int = 1_000, min_repeats: int = 2, star_min_farmers: int = 4,
           mule_min: int = 3, rmt_min_buyers: int = 3, **_: object) -> pd.DataFrame:
    """The report from `fraud_flows`' rows (giver_id, receiver_id, kind, trades, value_moved,
    giver_trades, receiver_trades)."""
    transfers = flows[flows["kind"] == "transfer"]
    overpays = flows[flows["kind"] == "overpay"]
    # value that went both ways (a quarter or more of it back) is an exchange, friends' gifts turn about:
    # no shape is read from it
    value = {(g, r): v for g, r, v in zip(transfers["giver_id"], transfers["receiver_id"], transfers["value_moved"])}
    one_way = [value.get((r, g), 0) < PAIR_BACK * v
               for g, r, v in zip(transfers["giver_id"], transfers["receiver_id"], transfers["value_moved"])]
    transfers = transfers[pd.Series(one_way, index=transfers.index, dtype=bool)]  # (a list of none: no columns)
    activity = {**dict(zip(flows["giver_id"], flows["giver_trades"])),
                **dict(zip(flows["receiver_id"], flows["receiver_trades"]))}
    ins = transfers.groupby("receiver_id").agg(trades=("trades", "sum"), value=("value_moved", "sum"),
                                               most=("trades", "max"))
    outs = transfers.groupby("giver_id").agg(trades=("trades", "sum"), value=("value_moved", "sum"),
                                             most=("trades", "max"))
    both = ins.join(outs, lsuffix="_in", rsuffix="_out", how="inner")
    repeated = transfers[transfers["trades"] >= min_repeats]
    found: list[tuple[int, str, str]] = []
    read_from: dict[str, list[pd.DataFrame]] = {pattern: [] for pattern in ORDER}  # each shape's flows

    def add(players, pattern: str, role: str) -> None:
        found.extend((int(p), pattern, role) for p in sorted(set(players)))

    # rmt
    buyers_of = overpays.groupby("receiver_id")["giver_id"].nunique()
    sellers = set(buyers_of[buyers_of >= rmt_min_buyers].index)
    add(sellers, "rmt", "seller")
    sold = overpays[overpays["receiver_id"].isin(sellers)]
    add(sold["giver_id"], "rmt", "buyer")
    read_from["rmt"].append(sold)
    # mule
    through = {p for p, r in both.iterrows()
               if activity.get(p) == r.trades_in + r.trades_out and r.value_out >= PASSES_ON * r.value_in}
    fed = transfers[transfers["giver_id"].isin(through)]
    mules_of = fed.groupby("receiver_id")["giver_id"].nunique()
    hubs = set(mules_of[mules_of >= mule_min].index)
    to_hubs = fed[fed["receiver_id"].isin(hubs)]
    mules = set(to_hubs["giver_id"])
    to_mules = transfers[transfers["receiver_id"].isin(mules)]
    fed_by = to_mules.groupby("giver_id")["receiver_id"].nunique()
    add(hubs, "mule", "hub")
    add(mules, "mule", "mule")
    add(fed_by[fed_by >= 2].index, "mule", "source")
    read_from["mule"] += [to_hubs, to_mules]
    # chain
    merchants = set(both[(both["most_in"] >= min_repeats) & (both["most_out"] >= min_repeats)
                         & (both["value_out"] >= MERCHANT_PASSES_ON * both["value_in"])].index)
    into, onward = repeated[repeated["receiver_id"].isin(merchants)], repeated[repeated["giver_id"].isin(merchants)]
    add(merchants, "chain", "merchant")
    add(into["giver_id"], "chain", "farmer")
    add(onward["receiver_id"], "chain", "banker")
    read_from["chain"] += [into, onward]
    # star
    kept = repeated.groupby("receiver_id").agg(farmers=("giver_id", "nunique"), value=("value_moved", "sum"))
    passed = outs["value"].reindex(kept.index).fillna(0)
    bankers = set(kept[(kept["farmers"] >= star_min_farmers) & (passed < MERCHANT_PASSES_ON * kept["value"])].index)
    fed_bankers = repeated[repeated["receiver_id"].isin(bankers)]
    add(bankers, "star", "banker")
    add(fed_bankers["giver_id"], "star", "farmer")
    read_from["star"].append(fed_bankers)
    # pair (its flows one way, as every flow left)
    add(repeated["giver_id"], "pair", "giver")
    add(repeated["receiver_id"], "pair", "receiver")
    read_from["pair"].append(repeated)

    # each player in the first pattern of ORDER it was found in, in the first role found there (the
    # pattern's core role is looked for first: seller, hub, merchant, banker, giver)
    flagged: dict[int, tuple[str, str]] = {}
    for _, (player, pattern, role) in sorted(enumerate(found), key=lambda f: (ORDER.index(f[1][1]), f[0])):
        flagged.setdefault(player, (pattern, role))
    # the evidence: the flows its pattern was read from that it took part in, whatever pattern its
    # partners were reported in (a star's banker that also banks a chain is reported in the chain; its
    # farmers' evidence still names it)
    evidence = {p: {"partners": set(), "value_moved": 0, "trades": 0} for p in flagged}
    for pattern, frames in read_from.items():
        shaped = pd.concat(frames).drop_duplicates(["giver_id", "receiver_id", "kind"]) if frames else flows[:0]
        for g, r, trades, value in zip(shaped["giver_id"], shaped["receiver_id"], shaped["trades"],
                                       shaped["value_moved"]):
            for me, partner in ((int(g), int(r)), (int(r), int(g))):
                if flagged.get(me, ("",))[0] == pattern:
                    e = evidence[me]
                    e["partners"].add(partner)
                    e["value_moved"] += int(value)
                    e["trades"] += int(trades)
    rows = [{"player_id": p, "pattern": flagged[p][0], "role": flagged[p][1],
             "score": round(e["value_moved"] / min_value, 1), "partners": len(e["partners"]),
             "partner_ids": ",".join(str(x) for x in sorted(e["partners"])), "value_moved": e["value_moved"],
             "trades": e["trades"]} for p, e in evidence.items()]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.sort_values(["score", "player_id"], ascending=[False, True], ignore_index=True)
