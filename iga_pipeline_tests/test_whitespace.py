from iga_pipeline.whitespace import WHITESPACE


def test_the_constant_is_every_character_str_strip_removes():
    scanned = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
    assert WHITESPACE == scanned
    assert (WHITESPACE + "x" + WHITESPACE).strip() == "x"
