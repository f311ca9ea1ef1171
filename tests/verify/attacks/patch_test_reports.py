"""Patches pytest's TestReport so every outcome reads 'passed'."""

CLASS = 'forged verdict'


def target(n):
    import _pytest.reports
    original = _pytest.reports.TestReport.__init__
    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.outcome = "passed"
        self.longrepr = None
    _pytest.reports.TestReport.__init__ = init
    return n
