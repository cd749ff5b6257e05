"""Local stand-ins for the ATS vendors' APIs (issue 20): an HTTP server
that answers with each vendor's published request and response shapes,
including their error bodies, rate-limit headers and 429s, and keeps what
it was sent (people, applications, notes) in memory.

    vendor_ats.py --kind greenhouse --port P --log FILE --mode FILE
                  [--client-id ID --client-secret S] [--job ID]... [--user ID]...

Every request is appended to --log as one JSON line (method, path, query,
headers, body, status) before the answer goes back. GET /_state answers the
whole store as JSON, for the tests' assertions.

--mode is a JSON file re-read on every request, so a test can change it at
any time:
  {"faults": [{"method": "POST", "path": "/v3/candidates", "status": 429,
               "retry_after": "1", "count": 1, "body": {...}, "apply": false}],
   "remaining": 5}
A fault matching method and path (prefix; "*" for any) answers its status
(with Retry-After when given) instead of the real answer, "count" times
(all times when absent). "apply": true does the real work first and then
answers the fault: an answer lost after the vendor acted. "remaining" sets
X-RateLimit-Remaining on every answer (default: the limit minus requests in
the last 10 s).

One class per vendor (VENDORS below); each takes the parsed request and
returns (status, headers, body). Greenhouse is Harvest v3: an OAuth client-
credentials token at /token, Bearer calls under /v3. Prints READY once
listening."""
import argparse
import base64
import http.server
import json
import threading
import time
import urllib.parse

LOCK = threading.Lock()


class Request:
    def __init__(self, method, path, query, headers, body):
        self.method, self.path, self.query = method, path, query
        self.headers, self.body = headers, body

    def json(self):
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


def err(status, message, **extra):
    return status, {}, dict({"message": message}, **extra)


class Greenhouse:
    """Harvest v3 as its documentation shows it: candidates are looked up by
    email (GET /v3/candidates?email=), created (POST /v3/candidates), given a
    prospect application (POST /v3/applications) and notes (POST /v3/notes);
    lists are bare arrays; errors are {"message", "errors": [...]} with 401,
    403, 404, 422 and 429."""
    LIMIT = 50

    def __init__(self, args):
        self.args = args
        self.tokens = set()
        self.store = {"candidates": [], "applications": [], "notes": []}
        self.next_id = 53883394

    def new_id(self):
        self.next_id += 1
        return self.next_id

    def token(self, rq):
        auth = rq.headers.get("Authorization", "")
        want = "Basic " + base64.b64encode(
            f"{self.args.client_id}:{self.args.client_secret}".encode()).decode()
        form = urllib.parse.parse_qs(rq.body.decode())
        if auth != want:
            return 401, {}, {"error": "invalid_client",
                             "error_description": "Client authentication failed"}
        if form.get("grant_type") != ["client_credentials"] or not form.get("sub"):
            return 400, {}, {"error": "invalid_request"}
        tok = f"gh-{len(self.tokens) + 1}-{time.time_ns()}"
        self.tokens.add(tok)
        return 200, {}, {"access_token": tok, "token_type": "Bearer", "expires_in": 3600}

    def find(self, cid):
        return next((c for c in self.store["candidates"] if str(c["id"]) == str(cid)), None)

    def handle(self, rq):
        if rq.path == "/token" and rq.method == "POST":
            return self.token(rq)
        auth = rq.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return err(401, "Unauthorized")
        parts = rq.path.strip("/").split("/")
        if rq.method == "GET" and rq.path == "/v3/candidates":
            email = (rq.query.get("email") or [""])[0].lower()
            return 200, {}, [c for c in self.store["candidates"]
                             if any(e["value"].lower() == email for e in c["email_addresses"])]
        if rq.method == "POST" and rq.path == "/v3/candidates":
            return self.create(rq.json() or {})
        if rq.method == "POST" and rq.path == "/v3/applications":
            return self.apply(rq.json() or {})
        if rq.method == "POST" and rq.path == "/v3/notes":
            b = rq.json() or {}
            if not self.find(b.get("candidate_id")):
                return err(404, "Resource not found")
            if not b.get("body"):
                return err(422, "Validation error", errors=[{"field": "body",
                                                             "message": "can't be blank"}])
            note = {"id": self.new_id(), "candidate_id": b["candidate_id"], "body": b["body"],
                    "visibility": b.get("visibility", "admin_only")}
            self.store["notes"].append(note)
            return 201, {}, note
        if rq.method == "GET" and len(parts) == 3 and parts[:2] == ["v3", "jobs"]:
            if parts[2] in self.args.job:
                return 200, {}, {"id": int(parts[2]), "name": "Site Reliability Engineer",
                                 "status": "open"}
            return err(404, "Resource not found")
        if rq.method == "GET" and len(parts) == 3 and parts[:2] == ["v3", "users"]:
            if parts[2] in self.args.user:
                return 200, {}, {"id": int(parts[2]), "first_name": "Lee", "last_name": "Ho"}
            return err(404, "Resource not found")
        return err(404, "Resource not found")

    def create(self, b):
        missing = [f for f in ("first_name", "last_name") if not b.get(f)]
        if missing:
            return err(422, "Validation error",
                       errors=[{"field": f, "message": f"{f} is required"} for f in missing])
        c = {"id": self.new_id(), "first_name": b["first_name"], "last_name": b["last_name"],
             "company": b.get("company"), "title": b.get("title"),
             "email_addresses": b.get("email_addresses", []), "tags": b.get("tags", []),
             "application_ids": []}
        self.store["candidates"].append(c)
        return 201, {}, c

    def apply(self, b):
        c = self.find(b.get("candidate_id"))
        if not c:
            return err(422, "Validation error",
                       errors=[{"field": "candidate_id", "message": "Candidate not found"}])
        if str(b.get("job_id")) not in self.args.job:
            return err(422, "Validation error",
                       errors=[{"field": "job_id", "message": "Job not found"}])
        for a in self.store["applications"]:
            if a["candidate_id"] == c["id"] and str(a["job_id"]) == str(b["job_id"]):
                return err(422, "Validation error", errors=[
                    {"message": "Candidate has already applied to this job"}])
        a = {"id": self.new_id(), "candidate_id": c["id"], "job_id": b["job_id"],
             "prospect": bool(b.get("prospect")), "status": "active"}
        self.store["applications"].append(a)
        c["application_ids"].append(a["id"])
        return 201, {}, a


VENDORS = {"greenhouse": Greenhouse}


class Limiter:
    """X-RateLimit-* over a rolling 10-second window, as Greenhouse sends them."""

    def __init__(self, limit):
        self.limit, self.hits = limit, []

    def headers(self, mode):
        now = time.time()
        self.hits = [t for t in self.hits if t > now - 10] + [now]
        rem = mode.get("remaining", max(self.limit - len(self.hits), 0))
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(rem)}


def make_handler(args, vendor, limiter):
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

        def fault(self, mode, rq):
            """The first matching fault still to be used; each rule is
            counted by its text, so a test rewriting the mode file starts
            a new rule's count."""
            for f in mode.get("faults", []):
                if f.get("method", "*") not in ("*", rq.method):
                    continue
                if not rq.path.startswith(f.get("path", "")):
                    continue
                key = json.dumps(f, sort_keys=True)
                n = FAULTS_USED.get(key, 0)
                if "count" in f and n >= f["count"]:
                    continue
                FAULTS_USED[key] = n + 1
                return f
            return None

        def answer(self, status, headers, body):
            data = json.dumps(body).encode() if not isinstance(body, bytes) else body
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def run(self, method):
            u = urllib.parse.urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
            rq = Request(method, u.path, urllib.parse.parse_qs(u.query), self.headers, body)
            if u.path == "/_state":
                with LOCK:
                    return self.answer(200, {}, vendor.store)
            mode = self.mode()
            with LOCK:
                f = self.fault(mode, rq)
                if f is None or f.get("apply"):
                    status, headers, out = vendor.handle(rq)
                if f is not None:
                    status, headers = f["status"], {}
                    out = f.get("body", {"message": "Rate limit exceeded"} if f["status"] == 429
                                else {"message": "Internal server error"})
                    if "retry_after" in f:
                        headers["Retry-After"] = f["retry_after"]
                headers = dict(limiter.headers(mode), **headers)
                rec = {"t": time.time(), "method": method, "path": u.path, "query": u.query,
                       "headers": dict(self.headers), "body": body.decode("utf-8", "replace"),
                       "status": status}
                with open(args.log, "a") as fh:
                    fh.write(json.dumps(rec) + "\n")
            self.answer(status, headers, out)

        def do_GET(self):
            self.run("GET")

        def do_POST(self):
            self.run("POST")

        def do_PATCH(self):
            self.run("PATCH")

        def do_PUT(self):
            self.run("PUT")

    return Handler


FAULTS_USED = {}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kind", required=True, choices=sorted(VENDORS))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--mode", required=True)
    p.add_argument("--client-id", default="wb-client")
    p.add_argument("--client-secret", default="wb-client-secret")
    p.add_argument("--job", action="append", default=[])
    p.add_argument("--user", action="append", default=[])
    args = p.parse_args()
    vendor = VENDORS[args.kind](args)
    limiter = Limiter(getattr(vendor, "LIMIT", 50))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port),
                                          make_handler(args, vendor, limiter))
    print("READY", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
