"""Bearer tokens for `query serve`: kept only as SHA-256 hashes, each scoped to collections.

RIS_API_TOKENS holds `HASH:COLLECTION[,COLLECTION...]` entries separated by `;`, `*` standing
for every collection. A token is 32 random bytes, so one round of SHA-256 is enough to keep it
secret at rest: there is nothing to brute-force as there would be with a password.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import Enum

from ris.errors import SettingsError

TOKEN_PREFIX = "ris_"
ALL_COLLECTIONS = "*"
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class Access(Enum):
    GRANTED = "granted"
    UNKNOWN_TOKEN = "unknown token"
    OTHER_COLLECTION = "not allowed for this collection"


@dataclass(frozen=True)
class TokenGrant:
    """One token, by the hash of it, and the collections it may search."""

    digest: str
    collections: frozenset[str]

    def allows(self, collection: str) -> bool:
        return ALL_COLLECTIONS in self.collections or collection in self.collections

    def entry(self) -> str:
        """The grant as it is written in RIS_API_TOKENS."""
        return f"{self.digest}:{','.join(sorted(self.collections))}"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token(collections: list[str]) -> tuple[str, TokenGrant]:
    """A fresh token (shown once, never stored) and its grant for RIS_API_TOKENS."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, TokenGrant(digest(token), frozenset(collections))


def parse_grants(text: str) -> list[TokenGrant]:
    """The grants of RIS_API_TOKENS; SettingsError naming the entry that is malformed."""
    grants = []
    for entry in filter(None, (part.strip() for part in text.split(";"))):
        hashed, _, names = entry.partition(":")
        collections = frozenset(filter(None, (name.strip() for name in names.split(","))))
        if not _DIGEST.match(hashed) or not collections:
            raise SettingsError(
                f"invalid setting RIS_API_TOKENS: entry {entry[:20]!r}... is not "
                "HASH:COLLECTION[,COLLECTION] (make one with `query token`)"
            )
        grants.append(TokenGrant(hashed, collections))
    return grants


def check(grants: list[TokenGrant], token: str, collection: str) -> Access:
    """Whether `token` may use `collection`; hashes compared in constant time."""
    presented = digest(token)
    for grant in grants:
        if hmac.compare_digest(grant.digest, presented):
            return Access.GRANTED if grant.allows(collection) else Access.OTHER_COLLECTION
    return Access.UNKNOWN_TOKEN
