"""Player tokens: short-lived, signed credentials that let a player act as itself only.

The game backend (with its API key) mints one with `POST /players/{id}/tokens`;
the player then sends `Authorization: Bearer bzp_...`.  A token is the player's
id, its expiry, the key that minted it (the key's SHA-256, as Redis keeps it, and
the key's generation: a key registered again after a revocation is a new one) and
the player's token epoch it was minted in (each revocation of the player's tokens
starts a new one), signed with `BAZAAR_TOKEN_SECRET` by itsdangerous (HMAC-SHA1
over a salted key derived from the secret; Flask's own dependency).  No token is
stored: a token holds until it expires (at most 24 h), until the key that minted
it is revoked, or until the player's tokens are revoked (`engine.auth` checks
both in Redis on every request, by counters, not clocks); changing the secret
ends every token at once.
What a token may call is decided in `engine.auth`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from itsdangerous import BadData, URLSafeSerializer

PREFIX = "bzp_"
DEFAULT_TTL_S = 3600
MAX_TTL_S = 24 * 3600
SALT = "bazaar.player-token.v1"


class TokenProblem(Exception):
    """The token is expired, tampered with, signed with another secret, or not a token."""


@dataclass(frozen=True)
class Minted:
    token: str
    player_id: int
    expires_at: str


@dataclass(frozen=True)
class Claims:
    player_id: int
    key: str  # the SHA-256 (hex) of the API key that minted the token
    key_gen: int  # that key's generation when it minted the token
    epoch: int  # the player's token epoch it was minted in


class Tokens:
    def __init__(self, secret: str):
        if len(secret) < 32:
            raise ValueError("BAZAAR_TOKEN_SECRET must be at least 32 characters")
        self._signer = URLSafeSerializer(secret, salt=SALT)

    def mint(self, player_id: int, key: str, ttl_s: int = DEFAULT_TTL_S, now: float | None = None,
             key_gen: int = 0, epoch: int = 0) -> Minted:
        """A token for the player, minted by the API key whose SHA-256 is `key` (in its generation
        `key_gen`), in the player's token epoch `epoch`."""
        if not 1 <= ttl_s <= MAX_TTL_S:
            raise ValueError(f"ttl_s must be 1..{MAX_TTL_S}")
        now = time.time() if now is None else now
        expires = math.ceil(now + ttl_s)
        token = PREFIX + self._signer.dumps({"p": player_id, "x": expires, "k": key, "g": key_gen, "e": epoch})
        return Minted(token, player_id, datetime.fromtimestamp(expires, timezone.utc).isoformat())

    def player(self, token: str, now: float | None = None) -> int:
        """The player a valid token acts for; TokenProblem otherwise."""
        return self.claims(token, now).player_id

    def claims(self, token: str, now: float | None = None) -> Claims:
        """What a valid token says (its key and the player's revocations are Redis' to check);
        TokenProblem otherwise."""
        if not token.startswith(PREFIX):
            raise TokenProblem("not a player token")
        try:
            claims = self._signer.loads(token[len(PREFIX):])
        except BadData:
            raise TokenProblem("the token is not one this engine signed (tampered, truncated or another secret)") \
                from None
        if not (isinstance(claims, dict) and isinstance(claims.get("p"), int) and isinstance(claims.get("x"), int)):
            raise TokenProblem("the token's claims are not a player's")
        if claims["x"] <= (time.time() if now is None else now):
            raise TokenProblem("the token has expired; ask the game for a new one")
        if not (isinstance(claims.get("k"), str) and isinstance(claims.get("g"), int)
                and isinstance(claims.get("e"), int)):
            raise TokenProblem("the token does not name the key that minted it (minted by an older engine); "
                               "ask the game for a new one")
        return Claims(claims["p"], claims["k"], claims["g"], claims["e"])
