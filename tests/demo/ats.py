"""The demo's ATS: tests/integration/ats_receiver.py (an HTTP server that
checks each handoff's Warmbench-Signature with the shared secret and logs
every request) run as a child, and a follower of its log that writes each
handoff it accepted, signature verified, to DIR/NNN.json and prints a
"handoff verified" line. A request whose signature does not hold is
printed as refused and written nowhere else; people.py then fails the demo.

    ats.py --port P --secret-file F --dir DIR --ready FILE
        creates FILE once listening; stops its child on SIGTERM"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RECEIVER = os.path.join(HERE, "..", "integration", "ats_receiver.py")


def shown(path):
    """path relative to the current folder when inside it."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def follow(log, outdir, done):
    """Handles the log lines after the first `done`; returns the new count."""
    try:
        with open(log) as f:
            data = f.read()
    except FileNotFoundError:
        return done
    # Only whole lines: the receiver may be halfway through writing one.
    lines = data[:data.rfind("\n") + 1].splitlines()
    for line in lines[done:]:
        rec = json.loads(line)
        try:
            body = json.loads(rec["body"])
        except ValueError:
            body = None
        if not rec["sig_ok"] or not isinstance(body, dict):
            print("ATS: request %d REFUSED: Warmbench-Signature does not verify" % rec["n"],
                  flush=True)
            continue
        name = os.path.join(outdir, "%03d.json" % rec["n"])
        with open(name + ".tmp", "w") as f:
            json.dump(body, f, indent=2, ensure_ascii=False)
        os.replace(name + ".tmp", name)
        cand = body.get("candidate") or {}
        print("ATS: handoff verified: %s %s reason=%s sequence=%s (Idempotency-Key %s)"
              % (shown(name), cand.get("email"), body.get("reason"),
                 body.get("sequence"), rec["headers"].get("Idempotency-Key")), flush=True)
    return len(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--secret-file", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--ready", required=True)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    log = os.path.join(args.dir, "requests.jsonl")
    mode = os.path.join(args.dir, "mode.json")
    with open(mode, "w") as f:
        json.dump({"status": 200}, f)
    stop = {"now": False}

    def on_signal(_sig, _frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    child = subprocess.Popen([sys.executable, RECEIVER, "--port", str(args.port),
                              "--secret-file", args.secret_file, "--out", log, "--mode", mode],
                             stdout=subprocess.PIPE, text=True)
    try:
        if child.stdout.readline().strip() != "READY":
            print("ATS receiver did not start", file=sys.stderr)
            return 1
        open(args.ready, "w").close()
        done = 0
        while not stop["now"]:
            if child.poll() is not None:
                print("ATS receiver exited (%s)" % child.returncode, file=sys.stderr)
                return 1
            done = follow(log, args.dir, done)
            time.sleep(0.1)
        follow(log, args.dir, done)
        return 0
    finally:
        if child.poll() is None:
            child.terminate()
            child.wait(10)


if __name__ == "__main__":
    sys.exit(main())
