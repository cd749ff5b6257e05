"""Runs every tests/integration/test_*.py with one shared PostgreSQL cluster
and prints "RESULT integration PASSED FAILED" for tests/run-all.sh."""
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def main():
    def on_signal(signum, _frame):
        harness.stop_cluster()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    here = os.path.dirname(os.path.abspath(__file__))
    pattern = os.environ.get("WB_TESTS", "test_*.py")
    suite = unittest.defaultTestLoader.discover(here, pattern=pattern, top_level_dir=here)
    only = os.environ.get("WB_ONLY")
    if only:
        def flat(s):
            for t in s:
                if isinstance(t, unittest.TestSuite):
                    yield from flat(t)
                else:
                    yield t
        suite = unittest.TestSuite(t for t in flat(suite) if only in t.id())
    try:
        result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    finally:
        harness.stop_cluster()
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"RESULT integration {result.testsRun - failed - len(result.skipped)} {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
