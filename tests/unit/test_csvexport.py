import csv
import io
from datetime import UTC, datetime

from webapp import csvexport


def test_stream_writes_header_rows_and_defuses_formulas():
    rows = [
        [1, '=HYPERLINK("x")', None, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)],
        [2, "-1+2", "plain, with comma", "@SUM(A1)"],
    ]
    text = "".join(csvexport.stream(["id", "a", "b", "c"], iter(rows)))
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == ["id", "a", "b", "c"]
    assert parsed[1] == ["1", '\'=HYPERLINK("x")', "", "2026-01-02T03:04:05+00:00"]
    assert parsed[2] == ["2", "'-1+2", "plain, with comma", "'@SUM(A1)"]


def test_stream_is_lazy():
    def rows():
        yield [1]
        raise AssertionError("read past what was asked for")

    out = csvexport.stream(["n"], rows())
    assert next(out) == "n\r\n" and next(out) == "1\r\n"
