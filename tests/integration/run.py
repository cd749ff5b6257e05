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

# Seconds a module took on the 2-core CI machine, two shards running;
# others count as 10.
SLOW = {
    "test_daemon": 121, "test_report": 100, "test_http": 82, "test_handoff": 72,
    "test_dormant": 71, "test_install": 69, "test_ats_in": 52, "test_mailbox": 49,
    "test_privacy": 48, "test_scoring": 43, "test_migrate_enroll": 34, "test_pg_loop": 30,
    "test_variants": 29, "test_import": 28, "test_attribution": 17, "test_check_config": 17,
    "test_e2e": 15, "test_pool": 8, "test_smtp": 3, "test_slow": 30, "test_crash": 30, "test_oauth_send": 40, "test_guard": 12, "test_owners": 30, "test_pause": 22, "test_preview": 5,
    "test_oauth": 75,
    "test_senders": 3, "test_demo": 42,
    "test_intent_e2e": 12,
    "test_stats_summary": 20,
    "test_calendar": 15,
    "test_tracking_hostile": 25,
    "test_failover": 45,
    "test_window_drain": 8,
    "test_plan": 35,
    "test_tasks": 20,
    "test_ooo": 30,
    "test_ats_native": 28,
    "test_abuse": 55,
    "test_ats_vendors": 50,
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
