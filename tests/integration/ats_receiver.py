"""A test ATS: an HTTP server that receives warmbench's handoff webhooks,
checks each signature with the shared secret, and records every request
(headers, body, whether the signature held, what it answered) as one JSON
line in --out, written before the answer goes back.

Its behaviour comes from --mode, a JSON file re-read on every request, so
a test can change it at any time:
  {"status": 200}                          answer 200 (the default)
  {"status": 503, "until": UNIX}           answer 503 until then, 200 after
  {"status": 503, "count": N}              the first N requests get 503
  {"retry_after": "2"}                     add Retry-After to the non-2xx
  {"status": 400, "body": "bad"}           answer 400 with that body
  {"hang": SECONDS}                        read the request, answer nothing
  {"fail_rate": 0.2}                       answer 503 to a random fifth (the soak)
"until", "count" and "hang" combine with "status" as written.
--delay-ms N holds every answer N ms after the request is recorded (a slow
ATS); 0, the default, answers at once. Prints READY once listening."""
import argparse
import hashlib
import hmac
import http.server
import json
import os
import random
import threading
import time

LOCK = threading.Lock()
SEEN = {"n": 0}


def verify(secret, header, body):
    parts = dict(p.strip().split("=", 1) for p in (header or "").split(",") if "=" in p)
    if "t" not in parts or "v1" not in parts:
        return False
    want = hmac.new(secret, parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, parts["v1"]) and abs(time.time() - int(parts["t"])) < 300


def make_handler(args, secret):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def mode(self):
            try:
                with open(args.mode) as f:
                    return json.load(f)
            except (OSError, ValueError):
                return {}

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            m = self.mode()
            with LOCK:
                SEEN["n"] += 1
                n = SEEN["n"]
            status = m.get("status", 200)
            if "until" in m and time.time() >= m["until"]:
                status = 200
            if "count" in m and n > m["count"]:
                status = 200
            if random.random() < m.get("fail_rate", 0):
                status = 503
            answer = "hang" if m.get("hang") else status
            rec = {"n": n, "t": time.time(), "path": self.path, "headers": dict(self.headers),
                   "body": body.decode("utf-8", "replace"),
                   "sig_ok": verify(secret, self.headers.get("Warmbench-Signature"), body),
                   "answer": answer}
            with LOCK, open(args.out, "a") as f:
                f.write(json.dumps(rec) + "\n")
            if args.delay_ms > 0:
                time.sleep(args.delay_ms / 1000.0)
            if m.get("hang"):
                time.sleep(m["hang"])
                self.close_connection = True
                return
            text = ("ok" if status == 200 else m.get("body", "unavailable")).encode()
            self.send_response(status)
            if status != 200 and m.get("retry_after") is not None:
                self.send_header("Retry-After", str(m["retry_after"]))
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

    return Handler


class Server(http.server.ThreadingHTTPServer):
    # socketserver's listen backlog is 5: the daemon opens up to 32
    # connections at once, and a connection the full queue left half-open
    # waited out the daemon's 30 s transfer timeout (test_tasks, 4 of 60).
    request_queue_size = 128


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--secret-file", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--mode", required=True)
    ap.add_argument("--delay-ms", type=int, default=0)
    args = ap.parse_args()
    with open(args.secret_file, "rb") as f:
        secret = f.read().rstrip(b"\r\n")
    srv = Server(("127.0.0.1", args.port), make_handler(args, secret))
    srv.daemon_threads = True
    print("READY", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
