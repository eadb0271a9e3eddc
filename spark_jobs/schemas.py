"""Spark schemas of the events, derived from the engine's one definition
(`engine.events`), and the column lists of the tables the sinks write.

The event schema is read from the pydantic models' JSON Schema, so a field
added to an event appears here without a second definition.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pyspark.sql import types as T

from engine.events import OfferEvent, PlayerStateEvent, TradeEvent

CORRUPT = "_corrupt"  # from_json puts a record that does not fit the schema here

_SCALARS = {"string": T.StringType(), "integer": T.LongType(), "boolean": T.BooleanType(),
            "number": T.DoubleType()}


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        return defs[node["$ref"].split("/")[-1]]
    return node


def _spark_type(node: dict[str, Any], defs: dict[str, Any]) -> T.DataType:
    node = _resolve(node, defs)
    if "anyOf" in node:  # Optional[X] is anyOf [X, null]
        (inner,) = [n for n in node["anyOf"] if n.get("type") != "null"]
        return _spark_type(inner, defs)
    kind = node.get("type")
    if kind == "object":
        return _struct(node, defs)
    if kind == "array":
        return T.ArrayType(_spark_type(node["items"], defs), containsNull=True)
    if kind in _SCALARS:
        return _SCALARS[kind]
    raise TypeError(f"no Spark type for JSON Schema node {node}")


def _struct(node: dict[str, Any], defs: dict[str, Any]) -> T.StructType:
    return T.StructType([T.StructField(name, _spark_type(sub, defs), nullable=True)
                         for name, sub in node["properties"].items()])


def spark_schema(model: type[BaseModel], corrupt_column: bool = True) -> T.StructType:
    """The model as a Spark struct; every field nullable (required ones are checked apart)."""
    doc = model.model_json_schema(mode="serialization")
    struct = _struct(doc, doc.get("$defs", {}))
    if corrupt_column:
        struct = struct.add(CORRUPT, T.StringType())
    return struct


TRADE_EVENT = spark_schema(TradeEvent)
PLAYER_STATE_EVENT = spark_schema(PlayerStateEvent)
OFFER_EVENT = spark_schema(OfferEvent)
ENVELOPE = T.StructType([T.StructField("event_type", T.StringType()), T.StructField("event_id", T.StringType()),
                         T.StructField("schema_version", T.LongType()), T.StructField(CORRUPT, T.StringType())])
