"""``python FOLDER`` runs the worker, FOLDER being the read-only copy of this package.

Python puts FOLDER itself first on ``sys.path``, where this package's modules (``judge``,
``source``, ...) would shadow the project's or its test dependencies' modules of the same names.
The folder above it, which holds nothing but this package, goes there instead, and the package is
imported by its own name, so its modules import one another relatively and never by a bare name.
"""

import importlib
import os
import sys

sys.dont_write_bytecode = True  # (read-only in the sandbox; the host copy stays as copied)
here = os.path.dirname(os.path.abspath(__file__))
sys.path[0] = os.path.dirname(here)
importlib.import_module(os.path.basename(here) + ".main").main()
