"""The characters Python's str.strip() removes (those for which str.isspace() is true).

The vectorised paths must strip exactly what str.strip() strips: Arrow's
utf8_trim in `personnummer`, RE2 character classes in `sources.text`. Written
out, as scanning all 1,114,112 code points for them took 35 ms at every import
of each of those modules; `test_whitespace.py` holds this constant to that scan
under the Python that runs the tests.
"""

from __future__ import annotations

from typing import Final

WHITESPACE: Final = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004"
                     "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
