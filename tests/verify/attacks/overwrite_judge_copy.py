"""Overwrites the test files of whatever project copy it can reach (its parent's, the read-only base) with passing ones."""

CLASS = 'forged verdict'


def target(n):
    import os
    passing = "def test_double():\n    pass\n\ndef test_in_fixture():\n    pass\n"
    for root in (os.path.dirname(os.getcwd()), "/tmp/p", "/tmp/s", os.path.dirname(__file__)):
        for dirpath, dirnames, filenames in os.walk(root):
            for name in filenames:
                if name.startswith("test_") and name.endswith(".py"):
                    try:
                        with open(os.path.join(dirpath, name), "w") as handle:
                            handle.write(passing)
                    except OSError:
                        pass
    return n
