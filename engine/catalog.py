"""The game catalog: player classes, items and the names players are given.

The catalog is code, versioned with the engine: the server trusts only its own
item definitions, whatever a client sends.  Item values spread from a couple of
gold to millions so that "richest player" and "lopsided trade" mean something.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Item:
    item_id: int
    name: str
    level: int
    value: int


@dataclass(frozen=True)
class PlayerClass:
    name: str
    weight: int  # share of "random" players, relative to the other classes
    gold: int
    max_capacity: int  # units (sum of quantities) a player may hold
    items: tuple[tuple[int, int], ...]  # starting (item_id, quantity)


ITEMS: dict[int, Item] = {
    item.item_id: item
    for item in (
        Item(1, "Stale Bread", 1, 2),
        Item(2, "Wooden Club", 1, 5),
        Item(3, "Torch", 1, 8),
        Item(4, "Healing Herb", 2, 15),
        Item(5, "Leather Cap", 3, 40),
        Item(6, "Iron Dagger", 4, 75),
        Item(7, "Short Bow", 5, 120),
        Item(8, "Health Potion", 5, 150),
        Item(9, "Mana Potion", 6, 180),
        Item(10, "Chainmail Vest", 8, 450),
        Item(11, "Steel Longsword", 10, 900),
        Item(12, "Oak Staff", 10, 1_100),
        Item(13, "Lockpick Set", 12, 1_500),
        Item(14, "Lute of Echoes", 14, 2_400),
        Item(15, "Tower Shield", 16, 3_200),
        Item(16, "Elven Cloak", 18, 6_000),
        Item(17, "Runed Gauntlets", 20, 9_500),
        Item(18, "Mithril Helm", 24, 18_000),
        Item(19, "Phoenix Feather", 28, 35_000),
        Item(20, "Storm Scepter", 32, 60_000),
        Item(21, "Dwarven Warhammer", 36, 95_000),
        Item(22, "Frostfire Blade", 40, 150_000),
        Item(23, "Tome of the Archmage", 45, 280_000),
        Item(24, "Dragonscale Armor", 50, 500_000),
        Item(25, "Philosopher's Stone", 55, 900_000),
        Item(26, "Soulforged Bow", 60, 1_400_000),
        Item(27, "Eye of the Leviathan", 70, 2_500_000),
        Item(28, "Crown of the Void King", 80, 5_000_000),
    )
}

CLASSES: dict[str, PlayerClass] = {
    cls.name: cls
    for cls in (
        PlayerClass("warrior", 16, 300, 40, ((2, 1), (5, 1), (8, 3), (11, 1))),
        PlayerClass("mage", 14, 400, 30, ((9, 5), (12, 1), (4, 4))),
        PlayerClass("rogue", 12, 500, 35, ((6, 2), (13, 1), (8, 2))),
        PlayerClass("ranger", 11, 350, 45, ((7, 1), (3, 5), (4, 6))),
        PlayerClass("cleric", 9, 450, 30, ((8, 6), (4, 8), (1, 3))),
        PlayerClass("paladin", 8, 600, 40, ((11, 1), (15, 1), (10, 1))),
        PlayerClass("bard", 7, 800, 30, ((14, 1), (1, 5), (8, 1))),
        PlayerClass("druid", 7, 250, 50, ((4, 12), (12, 1), (3, 3))),
        PlayerClass("monk", 6, 150, 25, ((1, 10), (4, 5))),
        PlayerClass("necromancer", 5, 700, 30, ((9, 4), (16, 1), (19, 1))),
        PlayerClass("merchant", 4, 25_000, 80, ((1, 20), (3, 10), (10, 2), (18, 1))),
        PlayerClass("noble", 1, 250_000, 60, ((17, 1), (20, 1), (24, 1))),
    )
}

RANDOM_CLASS = "random"


def get_item(item_id: int) -> Item | None:
    return ITEMS.get(item_id)


def draw_class(rng: random.Random) -> PlayerClass:
    """A class drawn from the game's class distribution (the `weight`s)."""
    classes = list(CLASSES.values())
    return rng.choices(classes, weights=[c.weight for c in classes], k=1)[0]


@cache
def _words(kind: str) -> tuple[str, ...]:
    text = resources.files("engine").joinpath("data", f"{kind}.txt").read_text()
    return tuple(w.strip() for w in text.splitlines() if w.strip())


def random_username(rng: random.Random) -> str:
    """A candidate username: adjective, noun and a number, e.g. `SwiftFalcon417`.

    The caller reserves it atomically and draws again if it is taken; with
    ~200 x ~200 x 10,000 combinations collisions stay rare at millions of players.
    """
    return f"{rng.choice(_words('adjectives'))}{rng.choice(_words('nouns'))}{rng.randrange(10_000)}"
