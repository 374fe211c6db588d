"""person_key: a keyed hash (HMAC-SHA256) of the normalised personnummer.

The secret comes from IGA_PSEUDONYM_KEY. Without it the build runs on a
public development key and says so loudly; with IGA_ENV=production it refuses.
The same secret gives the same key for the same person in every cycle and
every rebuild; another secret gives unrelated keys (see docs/decisions.md,
"Key rotation").
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

import pandas as pd

DEVELOPMENT_KEY = "iga-development-key-NOT-SECRET"
ENV_VAR = "IGA_PSEUDONYM_KEY"


class KeyError_(RuntimeError):
    """The pseudonym key is unusable (for example the development key in production)."""


@dataclass(frozen=True)
class PseudonymKey:
    secret: bytes
    is_development: bool

    def person_keys(self, pnr12: pd.Series) -> pd.Series:
        """Hex HMAC-SHA256 of each normalised personnummer; <NA> stays <NA>.

        Hashes each distinct value once."""
        values = pnr12.astype("string")
        uniques = values.dropna().unique()
        digests = {
            v: hmac.new(self.secret, v.encode("ascii"), hashlib.sha256).hexdigest() for v in uniques
        }
        return values.map(digests).astype("string")


def key_from_env(environ: dict[str, str] | None = None) -> PseudonymKey:
    """The key from IGA_PSEUDONYM_KEY, else the development key (callers warn loudly)."""
    env = os.environ if environ is None else environ
    secret = env.get(ENV_VAR, "")
    if secret:
        return PseudonymKey(secret.encode("utf-8"), is_development=False)
    if env.get("IGA_ENV", "").lower() == "production":
        raise KeyError_(
            f"{ENV_VAR} is not set and IGA_ENV=production: refusing to pseudonymise "
            "with the public development key"
        )
    return PseudonymKey(DEVELOPMENT_KEY.encode("utf-8"), is_development=True)
