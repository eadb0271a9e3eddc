"""The local stack's own API key, for its tools: the simulator, the demo, the benchmarks, the tests.

Made on the first `bazaar up` (once Redis answers), kept at HOME/api-key (mode 0600 from
its creation) and registered under the name `bazaar-local`, with the admin scope (the operator's
tools read `/economy/totals`).  A later `up` registers the
file's key again if Redis lost it, so the file always opens the stack.  `BAZAAR_API_KEY`
in the environment wins over the file (`Stack.api_key`).
"""

from __future__ import annotations

from pathlib import Path

from bazaar.settings import Stack, private_file
from engine.auth import KEY_FORMAT, Keys, key_hash, new_key
from engine.db import make_redis

NAME = "bazaar-local"
RATE = 1_000_000  # the stack's own tools drive thousands of trades a second (the benchmarks)


def key_path(stack: Stack) -> Path:
    return stack.home / "api-key"


def ensure_stack_key(stack: Stack) -> str:
    """The stack's key, made and registered if missing; Redis must be up."""
    path = key_path(stack)
    key = private_file(path, new_key, KEY_FORMAT.fullmatch)  # a damaged file is replaced
    client = make_redis(stack.redis)
    try:
        keys = Keys(client, stack.redis.namespace)
        digest = keys.lookup(NAME)
        if digest != key_hash(key):
            if digest is not None:  # the name holds a key whose file is gone: the file's key replaces it
                keys.revoke(NAME)
            keys.register(NAME, key, RATE, "admin")
        elif keys.scope(NAME) != "admin":  # registered before keys had scopes
            keys.set_scope(NAME, "admin")
    finally:
        client.close()
    return key
