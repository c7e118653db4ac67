"""The suite's table, built from its parts' JSON (a pure unit: no part is run)."""

from __future__ import annotations

from loadtest.suite import PartResult, render, rows

CONDITIONS = {
    "cores": 2,
    "cpu": "test cpu",
    "load_average_before": [0.1, 0.1, 0.1],
    "load_average_after": [1.0, 0.5, 0.2],
    "python": "3.11",
    "livectl_commit": "abc1234",
    "profile": "quick",
}


def test_every_part_row_is_kept_with_its_part_and_a_failed_part_says_so() -> None:
    parts = [
        PartResult(
            "foundation",
            0,
            60.0,
            {
                "rows": [
                    ["Ingest REST (2 gateway processes)", "200,000 ev/s", ">= 150,000", "met"],
                    ["Chat to console p99", "80 ms", "p99 <= 50 ms", "MISSED"],
                ],
                "ingest": [{"label": "REST", "cpu_cores": {"other": 0.6}}],
            },
        ),
        PartResult("fan-out", 0, 90.0, {"rows": [["memory", "28 KiB", "<= 30 KiB", "met"]]}),
        PartResult("claims", 3, 5.0, None),
    ]
    assert rows(parts) == [
        ("foundation", "Ingest REST (2 gateway processes)", "200,000 ev/s", ">= 150,000", "met"),
        ("foundation", "Chat to console p99", "80 ms", "p99 <= 50 ms", "MISSED"),
        ("fan-out", "memory", "28 KiB", "<= 30 KiB", "met"),
        ("claims", "the part's run", "exit code 3", "exit 0", "FAILED"),
    ]
    text = render(CONDITIONS, parts)
    assert "claims 5 s (exit 3)" in text
    assert "WARNING: other work took CPU during REST: 0.60 cores" in text
    assert "| fan-out    | memory" in text


def test_a_part_that_failed_after_writing_rows_keeps_them_and_is_marked() -> None:
    part = PartResult("workers", 1, 9.0, {"rows": [["lag", "5,000 ms", "< 1,000 ms", "MISSED"]]})
    assert rows([part]) == [
        ("workers", "lag", "5,000 ms", "< 1,000 ms", "MISSED"),
        ("workers", "the part's run", "exit code 1", "exit 0", "FAILED"),
    ]
