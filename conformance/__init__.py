"""The DFQS v1.0 conformance suite: the clause catalogue and one test per clause."""
