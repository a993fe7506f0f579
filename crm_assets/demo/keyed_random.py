"""Reproducible randomness in SQL: every draw is a slice of a keyed hash of the row's key.

DuckDB's ``random()`` is not reproducible once several threads run, and a Python loop over a
million people is far too slow; a hash of the row key (a person, a record, an order...) salted
with the seed and the purpose is both reproducible and parallel. The functions here return SQL
expressions; nothing is drawn in Python.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


class KeyedRandom:
    """Keyed pseudo-randomness in SQL.

    ``stream(key, purpose)`` is a 64-bit hash of a row key for one purpose; ``u``/``pick`` slice it
    into four independent 16-bit draws (``slot`` 0..3) and ``pick32`` into two 32-bit ones, so a row
    needs one hash per four decisions instead of one per decision.
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def salt(self, purpose: str) -> int:
        """A 64-bit number fixed by (seed, purpose): the same seed always gives the same data."""
        digest = hashlib.blake2b(f"{self.seed}/{purpose}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "little")

    def stream(self, key: str, purpose: str, hashed: bool = False) -> str:
        """64 random bits for ``key`` (an SQL expression; ``hashed``: already ``hash(key)``).

        DuckDB's ``hash(a, b, c)`` combines its arguments' hashes so weakly that draws for two
        purposes of one key are correlated (r ~ 0.9); hashing the key's hash XOR a
        per-(seed, purpose) salt gives independent streams.
        """
        base = key if hashed else f"hash(({key})::BIGINT)"
        return f"hash(xor({base}, {self.salt(purpose)}::UBIGINT))"

    @staticmethod
    def u(col: str, slot: int) -> str:
        """Uniform in [0, 1) with 16-bit resolution."""
        return f"((({col} >> {16 * slot}) & 65535)::DOUBLE * {1 / 65536!r})"

    @staticmethod
    def pick(col: str, slot: int, n: int | str) -> str:
        """Uniform integer in [0, n) for n <= 65536 (an int or an SQL expression >= 0)."""
        return f"(((({col} >> {16 * slot}) & 65535) * greatest({n}, 0)::UBIGINT) >> 16)::BIGINT"

    @staticmethod
    def pick32(col: str, half: int, n: int | str) -> str:
        """Uniform integer in [0, n) for n < 2**31."""
        return (
            f"(((({col} >> {32 * half}) & 4294967295) * greatest({n}, 0)::UBIGINT) >> 32)::BIGINT"
        )


def weighted(weights: Sequence[int], size: int) -> list[int]:
    """A lookup list of ``size`` indexes where index i appears in proportion to weights[i].

    Indexed by a uniform ``pick(..., size)``, it turns one draw into a weighted choice.
    """
    total = sum(weights)
    out: list[int] = []
    acc = 0
    for i, w in enumerate(weights):
        acc += w
        out.extend([i] * (round(acc * size / total) - len(out)))
    return out
