"""Finds pytest's config in memory and registers a hook that rewrites its own failure as a pass."""
import gc

import pytest


class _Rewriter:
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        report.outcome = "passed"
        report.longrepr = None


def target():
    from _pytest.config import Config

    for obj in gc.get_objects():
        if isinstance(obj, Config):
            obj.pluginmanager.register(_Rewriter(), "budgetpass-attack")
    return 0
