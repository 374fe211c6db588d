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


def test_survey_ids_are_keyed_apart_from_person_keys():
    """A survey's svar_id may be a personnummer: its response_id is HMAC(secret, 'survey|' + id),
    never person_key's first 16 hex digits, which participation_id carries ('c<cycle>-' + those):
    the anonymous answers would be joined to the participants (a mutation review's find: an HMAC
    of the bare svar_id passed every test)."""
    secret = b"survey-test-key"
    key = PseudonymKey(secret, False)
    values = pd.Series(["198501012382", "LINDQVISTUS", None], dtype="string")
    got = [None if pd.isna(v) else v for v in key.survey_ids(values)]
    expected = [hmac.new(secret, f"survey|{v}".encode(), hashlib.sha256).hexdigest()[:16] for v in values[:2]]
    assert got == [*expected, None]
    assert got[0] != key.person_keys(values[:1])[0][:16]


def test_a_production_key_of_exactly_the_minimum_length_is_accepted():
    """MIN_PRODUCTION_KEY characters are enough; one fewer is refused (the boundary of the check)."""
    from iga_pipeline.pseudonym import MIN_PRODUCTION_KEY, PseudonymKeyError, key_from_env

    key = key_from_env({"IGA_ENV": "production", "IGA_PSEUDONYM_KEY": "k" * MIN_PRODUCTION_KEY})
    assert not key.is_development and key.secret == b"k" * MIN_PRODUCTION_KEY
    with pytest.raises(PseudonymKeyError):
        key_from_env({"IGA_ENV": "production", "IGA_PSEUDONYM_KEY": "k" * (MIN_PRODUCTION_KEY - 1)})


def test_names_outside_ascii_are_hashed_as_utf8():
    """Swedish and other names are hashed as their UTF-8 bytes (RFC 2104 over UTF-8, as the
    docstrings say): another encoding changes every id of a name with å, ä or ö, and one that
    replaces what it cannot write gives 'Łódź.pdf' and 'Śódź.pdf' one id (a mutation review's
    find: every test used ASCII names)."""
    secret = b"utf8-test-key"
    key = PseudonymKey(secret, False)
    names = ["Åstorp_cykel3.xlsx", "Łódź.pdf", "Śódź.pdf"]
    ids = [key.name_id(n) for n in names]
    assert ids == [hmac.new(secret, f"name|{n}".encode("utf-8"), hashlib.sha256).hexdigest()[:10]
                   .translate(str.maketrans("0123456789", "ghijklmnop")) for n in names]
    assert len(set(ids)) == 3
