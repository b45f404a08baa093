"""Moved to :mod:`skillzero.contracts.skills` (the contracts layer).

This name stays importable for plugins written against it: it is the same module object,
so every name, private ones included, and every patch of an attribute, is shared.
"""

import sys

from skillzero.contracts import skills as _moved

sys.modules[__name__] = _moved
