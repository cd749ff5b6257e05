#!/usr/bin/python3
"""Run 1 of bench-send: wait until the sink has COUNT more messages.

One process that reads two small files every 20 ms, so that watching costs
the machine next to nothing. The shell loop it replaced forked about ten
processes five times a second (tail, tr, sed, awk, date, cat), which took a
fifth of a CPU from the run it was timing.

Usage: watch_send.py SINK_OUT BASE COUNT TIME_PID DEADLINE_S
  SINK_OUT  smtp-sink -c's output ("... mesg=N\\r" rewritten as it goes)
  TIME_PID  the /usr/bin/time wrapping warmbenchd (warmbenchd is its child)
Prints "wpid N" once warmbenchd is seen, then "done T HWM_KB" (T the wall
clock, in seconds, when the sink had them all; HWM_KB warmbenchd's VmHWM).
Exits 1 when warmbenchd exits first or the deadline passes."""
import os
import re
import sys
import time

MESG = re.compile(rb"mesg=(\d+)")


def sink_count(path):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 200))
            found = MESG.findall(f.read())
    except OSError:
        return 0
    return int(found[-1]) if found else 0


def child_of(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = f.read().split()
    except OSError:
        return None
    return int(kids[0]) if kids else None


def vm_hwm(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def main():
    sink_out, base, count, tpid, deadline = sys.argv[1:6]
    base, count, tpid = int(base), int(count), int(tpid)
    deadline = time.time() + float(deadline)
    wpid, hwm = None, 0
    while time.time() < deadline:
        if wpid is None:
            wpid = child_of(tpid)
            if wpid is not None:
                print(f"wpid {wpid}", flush=True)
        if wpid is not None:
            hwm = vm_hwm(wpid) or hwm
        if sink_count(sink_out) - base >= count:
            print(f"done {time.time():.6f} {hwm}", flush=True)
            return 0
        if not os.path.exists(f"/proc/{tpid}"):
            print("warmbenchd exited", flush=True)
            return 1
        time.sleep(0.02)
    print("deadline passed", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
