"""The clause table as a person reads it: evidence fitted to the terminal (whole under -v and in a log), a reason said
once, and a file that is not a GGUF named once with every check it stops referring to that finding."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Certification
from tests.terminal_run import pytest_in_a_terminal

ROW = ("DFQS-", "verdict: ")


def table(lines: list[str]) -> list[str]:
    start = next(index for index, line in enumerate(lines) if "DFQS v1.0 certification: " in line)
    return [line for line in lines[start:] if line.startswith(ROW)]


def certified_in_a_terminal(folder: Path, columns: int, *options: str) -> list[str]:
    status, lines = pytest_in_a_terminal(["--dfqs-model=demo", "-p", "no:cacheprovider", *options], folder, columns)
    assert status == 0, lines[-30:]
    return table(lines)


@pytest.mark.timeout(120)
def test_the_evidence_fits_the_terminal_and_is_whole_under_verbose(tmp_path: Path) -> None:
    narrow = certified_in_a_terminal(tmp_path, 100)
    clause_rows = [row for row in narrow if row.startswith("DFQS-")]
    assert all(len(row) <= 100 for row in clause_rows), [row for row in clause_rows if len(row) > 100]
    assert [row for row in clause_rows if row.endswith("...")], narrow  # the demo's long evidence is cut, and says so
    wide = certified_in_a_terminal(tmp_path, 220)
    assert all(len(row) <= 220 for row in wide if row.startswith("DFQS-")) and max(map(len, wide)) > 100
    verbose = certified_in_a_terminal(tmp_path, 100, "-v")
    assert not [row for row in verbose if row.startswith("DFQS-") and row.endswith("...")]
    assert max(len(row) for row in verbose) > 200  # the parameter counts' evidence, whole


def test_a_log_gets_the_evidence_whole(certify: Certification) -> None:
    """Not a terminal (pytester's pipe, a CI log): nothing is cut."""
    result = certify.run("--dfqs-model=demo")
    rows = [line for line in result.stdout.lines if line.startswith("DFQS-5.2")]
    assert len(rows) == 1 and rows[0].endswith("(section 5: Active Params | 13B)"), rows


def test_a_file_that_is_not_a_gguf_says_so_once(certify: Certification, tmp_path: Path) -> None:
    text = tmp_path / "notes.gguf"
    text.write_text("this is not a model at all\n")
    result = certify.run(f"--dfqs-model={text}")
    assert result.ret == 1
    rows = {line.split()[0]: line for line in result.stdout.lines if line.startswith("DFQS-")}
    said = [row for row in rows.values() if "not a GGUF file" in row]
    assert len(said) == 1 and said[0].startswith("DFQS-3.1   SHALL   NOT MET         invalid GGUF header: magic at byte 0"), said
    for clause in ("DFQS-3.3", "DFQS-5.4", "DFQS-9.1"):  # a 27-byte text file is no model of any size
        assert rows[clause].endswith("NOT MET         no readable GGUF header (see DFQS-3.1 gguf-header)"), rows[clause]
    assert rows["DFQS-3.2"].endswith("NOT MET         see DFQS-3.1 above (the same finding)"), rows["DFQS-3.2"]
    assert certify.clause("DFQS-9.1")["status"] == "NOT MET"
