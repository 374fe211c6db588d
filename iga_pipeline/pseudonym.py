"""person_key: a keyed hash (HMAC-SHA256) of the normalised personnummer.

The secret comes from IGA_PSEUDONYM_KEY. Without it the build runs on a
public development key and says so loudly; with IGA_ENV=production it refuses.
The same secret gives the same key for the same person in every cycle and
every rebuild; another secret gives unrelated keys (see docs/decisions.md,
"Key rotation").
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

DEVELOPMENT_KEY = "iga-development-key-NOT-SECRET"
ENV_VAR = "IGA_PSEUDONYM_KEY"


class PseudonymKeyError(RuntimeError):
    """The pseudonym key is unusable (for example the development key in production)."""


_BLOCK = 64  # SHA-256's block size in bytes (RFC 2104)
_NO_DIGITS = str.maketrans("0123456789", "ghijklmnop")  # name_id: hex digits written as letters


@dataclass(frozen=True)
class PseudonymKey:
    secret: bytes
    is_development: bool
    # Keys already computed, when `remembering()` made this copy (one cycle's files share people).
    memo: dict | None = field(default=None, compare=False, repr=False)

    def remembering(self) -> "PseudonymKey":
        """A copy that remembers every key it computes, for work on one cycle: the register,
        the end-of-cycle and the 90-day files name the same people. Drop it after the cycle."""
        return replace(self, memo={})

    def person_keys(self, pnr12: pd.Series) -> pd.Series:
        """Hex HMAC-SHA256 of each normalised personnummer; <NA> stays <NA>.

        Hashes each distinct value once (and, remembering, once per cycle)."""
        memo = {} if self.memo is None else self.memo

        def keys(uniques: list) -> list[str]:
            todo = [v for v in uniques if v not in memo]
            memo.update(zip(todo, self._hmac_hex(todo)))
            return [memo[v] for v in uniques]

        return _per_distinct(pnr12, keys)

    def survey_ids(self, values: pd.Series) -> pd.Series:
        """The anonymous survey's answer ids, keyed (16 hex digits); <NA> stays <NA>.

        `svar_id` is whatever the sender wrote, a name or a personnummer too: only
        this keyed hash of it leaves the adapter. Equal ids stay equal, so repeated
        answers are still found."""
        return _per_distinct(values, lambda uniques: [
            h[:16] for h in self._hmac_hex([f"survey|{v}" for v in uniques])])

    def name_id(self, name: str) -> str:
        """A name the senders chose (a file, a folder, a worksheet), keyed: 10 letters.

        Stable from build to build under one key. Unkeyed, a list of birth dates or of
        names undid it (`850101-2382.pdf`: 22 million candidates in 88 s).
        The HMAC's first 10 hex digits, with 0-9 written g-p: ten decimal digits (about one
        id in a hundred) would be shaped like a personnummer, and the `no_personnummer`
        check fails a build for one (it did, in a test, once the ids were keyed)."""
        return self._hmac_hex([f"name|{name}"])[0][:10].translate(_NO_DIGITS)

    def fingerprint(self, label: str) -> str:
        """Names this key for `label` (say, a cache) without revealing anything of it."""
        return self._hmac_hex([f"fingerprint|{label}"])[0][:32]

    def _hmac_hex(self, messages: list[str]) -> list[str]:
        """HMAC-SHA256 (RFC 2104, as `hmac.new(secret, m, sha256).hexdigest()`) of many messages.

        The keyed inner and outer states are hashed once; each message then costs two
        copies of a precomputed state and two short updates, under half of `hmac.new`."""
        key = self.secret if len(self.secret) <= _BLOCK else hashlib.sha256(self.secret).digest()
        key = key.ljust(_BLOCK, b"\0")
        inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
        out = []
        for m in messages:
            i = inner.copy()
            i.update(m.encode("utf-8", "surrogatepass"))  # personnummer: ASCII digits
            o = outer.copy()
            o.update(i.digest())
            out.append(o.hexdigest())
        return out


def _per_distinct(values: pd.Series, digest) -> pd.Series:
    """`digest(distinct values)` spread back over `values` as strings; <NA> stays <NA>."""
    import numpy as np  # here, not above: `iga-pipeline build --cycle N` reads the key first
    import pandas as pd  # and starts the cycle's worker before importing them (workers.py)

    values = values.astype("string")
    codes, uniques = pd.factorize(values)  # <NA> -> code -1
    out = np.array(list(digest(uniques.to_numpy(dtype=object).tolist())) + [None], dtype=object)
    return pd.Series(pd.array(out[codes], dtype="string"), index=values.index, name=values.name)


# In production a key must be at least this long: a personnummer is one of a few billion
# values, so a short key could be found by trying them all against one person_key.
MIN_PRODUCTION_KEY = 16


def key_from_env(environ: dict[str, str] | None = None) -> PseudonymKey:
    """The key from IGA_PSEUDONYM_KEY, else the development key (callers warn loudly).

    White space around either variable is not part of it, as env files often leave some (a
    review built in `IGA_ENV='production '` on the development key): a key of only white
    space is no key, and one that is the development key with spaces around is that key. A
    real key is used exactly as given, so that its person_keys never change."""
    env = os.environ if environ is None else environ
    secret = env.get(ENV_VAR, "")
    production = _is_production(env.get("IGA_ENV", ""))
    if secret.strip() and secret.strip() != DEVELOPMENT_KEY:
        if production and len(secret.strip()) < MIN_PRODUCTION_KEY:
            raise PseudonymKeyError(f"{ENV_VAR} has {len(secret.strip())} characters and IGA_ENV=production: "
                                    f"a key needs at least {MIN_PRODUCTION_KEY}")
        return PseudonymKey(secret.encode("utf-8"), is_development=False)
    if production:
        raise PseudonymKeyError(f"{ENV_VAR} {development_key_said(env)} and IGA_ENV=production: refusing to "
                                "pseudonymise with the public development key")
    return development_key()


ENVIRONMENTS = ("production", "development")


def _is_production(value: str) -> bool:
    """IGA_ENV: `production`, `development` or unset (any case, white space around ignored).
    Anything else is refused: a typo (`prod`, `Produktion`) once meant "not production" and
    built real deliveries on the public development key without a word (a review's find)."""
    value = value.strip().lower()
    if value and value not in ENVIRONMENTS:
        raise PseudonymKeyError(f"IGA_ENV={value[:40]!r} is neither 'production' nor 'development': set one "
                                "of them, or leave it unset (production refuses the development key)")
    return value == "production"


def development_key() -> PseudonymKey:
    """The public development key, as a build without IGA_PSEUDONYM_KEY uses it."""
    return PseudonymKey(DEVELOPMENT_KEY.encode("utf-8"), is_development=True)


def development_key_said(environ: dict[str, str] | None = None) -> str:
    """Why the development key is used, as the banner, the run's warning and a refusal say it:
    'is not set' was said of a variable that held it."""
    env = os.environ if environ is None else environ
    if env.get(ENV_VAR, "").strip():
        return "is the public development key"
    return "is blank" if ENV_VAR in env else "is not set"
