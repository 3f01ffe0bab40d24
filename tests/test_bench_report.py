"""The bench's report (no load is run here): every target gets a verdict, and the docs
table is replaced between its markers, leaving the rest of the page alone."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from bench import report

ROOT = Path(__file__).resolve().parents[1]
RECORDED = ROOT / "bench" / "results" / "latest.json"


def _recorded() -> dict[str, Any]:
    results: dict[str, Any] = json.loads(RECORDED.read_text())
    return results


def test_every_target_gets_met_or_not_met() -> None:
    rows = report.rows(_recorded())

    with_targets = [row for row in rows if row[4] and not row[4].startswith(("(", "idle"))]
    assert len(with_targets) == 8
    assert all(row[5] in ("met", "NOT MET") for row in with_targets)


def test_a_ratio_under_its_target_is_not_met() -> None:
    results = copy.deepcopy(_recorded())
    results["saturation"]["check"] = results["saturation"]["floor"] * 0.5

    row = next(r for r in report.rows(results) if r[0].startswith("entitlement checks/s"))

    assert (row[3], row[5]) == ("0.50", "NOT MET")


def test_the_cpu_rows_show_where_each_request_goes() -> None:
    results = _recorded()
    results["cpu_us_per_request"]["check"] = {"gateway": 150, "entitlements": 60, "postgres": 2}

    row = next(r for r in report.rows(results) if r[0].startswith("CPU per check"))

    assert row[1] == "150 / 60 / 2"


def test_the_docs_table_is_replaced_between_its_markers(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text(f"# Before\n\n{report.BEGIN}\nold table\n{report.END}\n\nAfter.\n")

    report.update_docs(page, _recorded())
    report.update_docs(page, _recorded())

    text = page.read_text()
    assert text.startswith("# Before\n") and text.endswith("\nAfter.\n")
    assert "old table" not in text
    assert text.count(report.BEGIN) == 1 and text.count("| entitlement checks/s") == 1
