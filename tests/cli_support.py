"""Shared by the reliability tests: what a refused command must look like."""

from __future__ import annotations


def one_line_error(code: int, err: str, verb: str, *fragments: str) -> None:
    """Exit status 2 and, as stderr's last line, ``bmsrl VERB: error: ...`` holding every fragment; no
    traceback (earlier lines may be the verb's progress)."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith(f"bmsrl {verb}: error: "), err
    assert "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[-1], (fragment, lines[-1])
