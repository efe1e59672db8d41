"""Time constants for tests, as multiples of one unit scaled by HUB_TEST_TIME_FACTOR."""

import os

UNIT = 0.1 * float(os.environ.get("HUB_TEST_TIME_FACTOR", "1"))


def units(n: float) -> float:
    """``n`` time units in seconds."""
    return n * UNIT
