"""Moved to :mod:`skillzero.contracts.trajectory` (the contracts layer).

This name stays importable for plugins written against it: it is the same module object,
so every name, private ones included, and every patch of an attribute, is shared.
"""

import sys

from skillzero.contracts import trajectory as _moved

sys.modules[__name__] = _moved
