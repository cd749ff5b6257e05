"""Runs tests/integration/test_*.py with one shared PostgreSQL cluster
and prints "RESULT integration PASSED FAILED" for tests/run-all.sh.

WB_TESTS (a file pattern) and WB_ONLY (a substring of test ids) select
tests. WB_SHARD=K/N runs only shard K of N: whole modules, spread by their
expected duration (SLOW below), so tests/run-all.sh can run the shards as
parallel processes, each with its own cluster. The closing lines give
each module's measured time, to keep SLOW true."""
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

# Seconds a module took on the 2-core CI machine, three shards running;
# others count as 10. The shards are balanced by these: keep them true.
SLOW = {
    # Measured in the clean-clone CI run of session 6 (3 shards, ASan build).
    "test_daemon": 75, "test_oauth": 74, "test_failover": 63, "test_dormant": 62,
    "test_http": 59, "test_install": 58, "test_abuse": 54, "test_slow": 57,
    "test_mailbox": 42, "test_demo": 41, "test_handoff": 37, "test_oauth_send": 37,
    "test_ats_vendors": 36, "test_plan": 32, "test_intent_e2e": 29, "test_tasks": 26,
    "test_guard": 25, "test_scoring": 24, "test_ats_native": 22, "test_ooo": 21,
    "test_crash": 19, "test_tracking_hostile": 19, "test_pause": 18, "test_pg_loop": 16,
    "test_report": 15, "test_ats_in": 13, "test_variants": 12, "test_e2e": 11,
    "test_privacy": 11, "test_stats_summary": 16, "test_migrate_enroll": 10,
    "test_attribution": 8, "test_owners": 8, "test_calendar": 6, "test_check_config": 5,
    "test_import": 5, "test_preview": 3, "test_window_drain": 3, "test_pool": 2,
    "test_senders": 1, "test_smtp": 1, "test_claim_fence": 3,
}


def flat(s):
    for t in s:
        if isinstance(t, unittest.TestSuite):
            yield from flat(t)
        else:
            yield t


def module_of(test):
    return test.id().split(".")[0]


def shard(tests, k, n):
    """Greedy: the longest module first, each to the least loaded shard."""
    mods = sorted({module_of(t) for t in tests}, key=lambda m: (-SLOW.get(m, 10), m))
    load = [0] * n
    mine = set()
    for m in mods:
        i = load.index(min(load))
        load[i] += SLOW.get(m, 10)
        if i == k:
            mine.add(m)
    return [t for t in tests if module_of(t) in mine]


class TimedResult(unittest.TextTestResult):
    times = {}

    def startTest(self, test):
        self._t0 = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        m = module_of(test)
        self.times[m] = self.times.get(m, 0) + time.monotonic() - self._t0
        super().stopTest(test)


def main():
    def on_signal(signum, _frame):
        harness.stop_cluster()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    here = os.path.dirname(os.path.abspath(__file__))
    pattern = os.environ.get("WB_TESTS", "test_*.py")
    tests = list(flat(unittest.defaultTestLoader.discover(here, pattern=pattern,
                                                          top_level_dir=here)))
    only = os.environ.get("WB_ONLY")
    if only:
        tests = [t for t in tests if only in t.id()]
    name = "integration"
    spec = os.environ.get("WB_SHARD")
    if spec:
        k, n = (int(x) for x in spec.split("/"))
        tests = shard(tests, k, n)
        name = f"integration[{k}/{n}]"
    try:
        runner = unittest.TextTestRunner(verbosity=2, stream=sys.stdout,
                                         resultclass=TimedResult)
        result = runner.run(unittest.TestSuite(tests))
    finally:
        harness.stop_cluster()
    for m, s in sorted(TimedResult.times.items(), key=lambda x: -x[1]):
        print(f"  {m}: {s:.0f} s")
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"RESULT {name} {result.testsRun - failed - len(result.skipped)} {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
