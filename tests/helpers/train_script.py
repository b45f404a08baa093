"""Run ``skillzero train`` with the corridor test plugin registered, for subprocess
tests (``torchrun``). Usage: ``python -m helpers.train_script OVERRIDE ...``."""

from __future__ import annotations

import sys

from helpers import corridor_plugin


def main(argv: list[str]) -> int:
    corridor_plugin.install()
    from skillzero.core.config import compose, validate
    from skillzero.core.training import train

    return train(validate(compose(argv)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
