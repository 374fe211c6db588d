"""person_key is exactly HMAC-SHA256(secret, normalised personnummer), however it is computed."""

import hashlib
import hmac

import pandas as pd
import pytest

from iga_pipeline.pseudonym import PseudonymKey


@pytest.mark.parametrize("secret", [b"k", b"iga-development-key-NOT-SECRET", b"x" * 64, b"y" * 65,
                                    "nyckel-åäö".encode(), b"z" * 200])
def test_person_keys_equal_the_standard_library_hmac(secret):
    values = pd.Series(["195501011234", None, "200001019876", "195501011234", "191212121212"], dtype="string")
    expected = [None if v is None else hmac.new(secret, v.encode("ascii"), hashlib.sha256).hexdigest()
                for v in values.astype(object).where(values.notna(), None)]
    for key in (PseudonymKey(secret, False), PseudonymKey(secret, False).remembering()):
        got = key.person_keys(values)
        assert str(got.dtype) == "string"
        assert [None if pd.isna(v) else v for v in got] == expected
        assert [None if pd.isna(v) else v for v in key.person_keys(values)] == expected  # again, remembered


def test_remembering_copies_do_not_share_or_leak_memory():
    key = PseudonymKey(b"s", False)
    a, b = key.remembering(), key.remembering()
    a.person_keys(pd.Series(["195501011234"], dtype="string"))
    assert len(a.memo) == 1 and b.memo == {} and key.memo is None
    assert a == key  # the memo is not part of the key's identity
