"""docs/reliability.md, written by the test run that proves it.

Fault-injection and hostile-input tests take the `reliability` fixture and say what
fault they injected, what the system did (figures measured in this run) and what they
checked. When RELIABILITY_REPORT names a file, the session ends by writing the table
there, with each test's outcome, so the document can never claim more than the run.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROWS: dict[str, "Row"] = {}


@dataclass
class Row:
    test: str
    fault: str = ""
    happened: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    outcome: str = "not run"

    def injected(self, text: str) -> None:
        self.fault = text

    def saw(self, text: str) -> None:
        self.happened.append(text)

    def check(self, text: str) -> None:
        if text not in self.checked:  # a fuzzer's examples all check the same thing
            self.checked.append(text)


@pytest.fixture
def reliability(request: pytest.FixtureRequest) -> Row:
    row = ROWS.setdefault(request.node.nodeid, Row(request.node.nodeid))
    return row


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = (yield).get_result()
    row = ROWS.get(item.nodeid)
    if row is not None and (report.when == "call" or report.failed):
        row.outcome = "passed" if report.passed and row.outcome in ("not run", "passed") else report.outcome


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get("RELIABILITY_REPORT")
    if target and ROWS:
        Path(target).write_text(render(list(ROWS.values())))


def _cell(parts: list[str] | str) -> str:
    text = "; ".join(parts) if isinstance(parts, list) else parts
    return text.replace("|", "\\|").replace("\n", " ")


def render(rows: list[Row]) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Reliability: faults injected and what tintype did",
        "",
        f"Written by `make test-chaos` on {stamp} ({platform.machine()}, {os.cpu_count()} cores) from the",
        "tests themselves (tests/reliability_report.py): every figure below was measured in that run.",
        "Each test runs real Redis, PostgreSQL, an S3 server, gunicorn and Celery worker processes;",
        "the chaos tests give each fault a private stack so it can be killed and restarted.",
        "",
        "| Fault | What happened | What was checked | Result | Test |",
        "|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=lambda r: r.test):
        lines.append(f"| {_cell(row.fault)} | {_cell(row.happened)} | {_cell(row.checked)} | {row.outcome} "
                     f"| `{row.test.split('::')[-1]}` |")
    return "\n".join(lines) + "\n"
