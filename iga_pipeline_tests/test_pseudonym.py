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


def test_name_ids_are_keyed_and_never_shaped_like_a_personnummer():
    """A stray file's or sheet's name is shown as `name_id`: the HMAC's first 10 hex digits
    with 0-9 written as letters. Unwritten, about one id in a hundred is ten decimal digits,
    which the warehouse's no_personnummer check (rightly) takes for a personnummer."""
    import re

    from iga_pipeline.quality.personal_data import PATTERN

    key = PseudonymKey(b"name-id-test-key", is_development=False)
    names = [f"{n:06d}-{n % 9973:04d}.pdf" for n in range(20_000)]
    ids = [key.name_id(n) for n in names]
    assert all(re.fullmatch(r"[a-p]{10}", i) for i in ids)
    assert not any(re.search(PATTERN, f"kommuner/1277/~{i}.pdf") for i in ids)
    digests = [hmac.new(b"name-id-test-key", f"name|{n}".encode(), hashlib.sha256).hexdigest()[:10]
               for n in names]
    assert ids == [d.translate(str.maketrans("0123456789", "ghijklmnop")) for d in digests]
    assert sum(d.isdigit() for d in digests) > 50, "the case the letters are for does occur"
    assert key.name_id("LASMIG.txt") != PseudonymKey(b"another key", False).name_id("LASMIG.txt")
