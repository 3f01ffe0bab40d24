"""The suite-wide secret scan: every line any test's code, service or process wrote (the
output pytest captured for each test, platforms' logs included) is searched for
credentials. One found fails the run, naming the test and the kind of secret (never the
secret itself). Responses are the API's business: keys are shown once, on creation.

Tests that print a secret on purpose (to show that this scan catches it) say so with
``@pytest.mark.prints_a_secret``."""

from __future__ import annotations

import re

import pytest

__all__ = ["SECRETS", "found_in"]

SECRETS = {
    "API key": re.compile(r"\bsb[ta]_[A-Za-z0-9]{30,}"),
    "access or session token (JWT)": re.compile(
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}"
    ),
    "Stripe key": re.compile(r"\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9]{8,}"),
    "webhook secret": re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]{16,}"),
}


def found_in(text: str) -> list[str]:
    """The kinds of secret ``text`` holds."""
    return [kind for kind, pattern in SECRETS.items() if pattern.search(text)]


class LeakScan:
    def __init__(self) -> None:
        self.leaks: list[str] = []
        self.scanned = 0

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if "prints_a_secret" in report.keywords:
            return
        for title, text in report.sections:
            self.scanned += 1
            for kind in found_in(text):
                self.leaks.append(f"{report.nodeid} ({title}): a {kind}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(session.config, "workerinput") or not self.leaks:
            return  # xdist workers send their reports on: the controller decides
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.section("secrets in captured output", sep="!")
            for leak in sorted(set(self.leaks)):
                reporter.line(leak)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
