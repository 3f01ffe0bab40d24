"""docs/operations.md names every log key and metric the code emits, so operators can
look each one up."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
LOG_CALL = re.compile(r'log\.(?:debug|info|warning|error|exception)\(\s*"([a-z_]+\.[a-z_]+)"')
METRIC = re.compile(r'(?:Counter|Histogram|Gauge)\(\s*"(stackbe_[a-z_]+)"')


def _sources() -> list[Path]:
    return [*(ROOT / "libs" / "common" / "src").rglob("*.py"), *ROOT.glob("services/*/src/**/*.py")]


def test_every_log_key_and_metric_is_in_the_operations_guide() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text()
    keys, metrics = set(), set()
    for path in _sources():
        text = path.read_text()
        keys |= set(LOG_CALL.findall(text))
        metrics |= set(METRIC.findall(text))
    assert len(keys) > 50 and len(metrics) >= 5
    missing = sorted(k for k in keys if f"`{k}`" not in doc and f"`{k.split('.')[0]}.*`" not in doc)
    assert missing == [], f"log keys missing from docs/operations.md: {missing}"
    assert sorted(m for m in metrics if f"`{m}`" not in doc) == []
