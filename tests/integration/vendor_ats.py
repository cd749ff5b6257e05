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
the last 10 s); "reset_in": N adds X-RateLimit-Reset, N seconds from now.

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
    email (GET /v3/candidates?email=), created (POST /v3/candidates, answered
    {"candidate", "application"}), given a prospect application (POST
    /v3/applications) and notes (POST /v3/notes); jobs and users are read
    with the ids filter (GET /v3/jobs?ids=, /v3/users?ids=); lists are bare
    arrays; errors are {"message", "errors": [...]} with 401, 403, 404, 422
    and 429. docs/ats/greenhouse.md says which shapes Greenhouse's own pages
    confirm."""
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
        # token_type, access_token and expires_at (ISO 8601), the fields
        # Greenhouse's own v3 client (grnhse/greenhouse-tools-php) requires.
        exp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 3600))
        return 200, {}, {"access_token": tok, "token_type": "Bearer", "expires_at": exp}

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
            return self.lookup(rq)
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
                    "visibility": b.get("visibility", "admin_only"),
                    "user_id": b.get("user_id"), "type": b.get("note_type", "NOTE")}
            self.store["notes"].append(note)
            return 201, {}, note
        if rq.method == "GET" and rq.path in ("/v3/jobs", "/v3/users"):
            return self.by_ids(rq)
        return err(404, "Resource not found")

    def by_ids(self, rq):
        """A list endpoint filtered by ids (harvestdocs "List endpoints"):
        the ones that exist, as a bare array."""
        ids = [i for i in (rq.query.get("ids") or [""])[0].split(",") if i]
        if rq.path == "/v3/jobs":
            return 200, {}, [{"id": int(i), "name": "Site Reliability Engineer", "status": "open"}
                             for i in ids if i in self.args.job]
        return 200, {}, [{"id": int(i), "first_name": "Lee", "last_name": "Ho"}
                         for i in ids if i in self.args.user]

    def lookup(self, rq):
        """A bare array of at most per_page; a further page is announced
        only by a Link rel="next" with an opaque cursor (harvestdocs
        "Pagination")."""
        email = (rq.query.get("email") or [""])[0].lower()
        hits = [c for c in self.store["candidates"]
                if any(e["value"].lower() == email for e in c["email_addresses"])]
        try:
            per_page = max(1, min(500, int((rq.query.get("per_page") or ["100"])[0])))
        except ValueError:
            return err(422, "Validation error", errors=[{"field": "per_page",
                                                         "message": "must be an integer"}])
        headers = {}
        if len(hits) > per_page:
            cursor = base64.urlsafe_b64encode(json.dumps(
                {"email": email, "after": hits[per_page - 1]["id"]}).encode()).decode()
            host = rq.headers.get("Host", "localhost")
            headers["Link"] = f'<http://{host}/v3/candidates?cursor={cursor}>; rel="next"'
        return 200, headers, hits[:per_page]

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
        # v3 answers the candidate and the application made with it (none here).
        return 201, {}, {"candidate": c, "application": None}

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


class SmartRecruiters:
    """SmartRecruiters' Customer API, the part the inbound lookup uses:
    GET /candidates/{id} with X-SmartToken (the web hook body carries no
    address). Candidates are seeded with POST /_seed (a test-only path)."""
    LIMIT = 10

    def __init__(self, args):
        self.args = args
        self.store = {"candidates": []}

    def handle(self, rq):
        if rq.path == "/_seed" and rq.method == "POST":
            self.store["candidates"].append(rq.json())
            return 201, {}, {}
        if rq.headers.get("X-SmartToken") != self.args.client_secret:
            return 401, {}, {"code": "UNAUTHORIZED", "message": "Invalid token"}
        parts = rq.path.strip("/").split("/")
        if rq.method == "GET" and len(parts) == 2 and parts[0] == "candidates":
            c = next((c for c in self.store["candidates"] if c["id"] == parts[1]), None)
            if c:
                return 200, {}, c
            return 404, {}, {"code": "NOT_FOUND", "message": "Candidate not found"}
        return 404, {}, {"code": "NOT_FOUND", "message": "Not found"}


VENDORS = {"greenhouse": Greenhouse, "smartrecruiters": SmartRecruiters}


class Limiter:
    """X-RateLimit-* over a rolling 10-second window, as Greenhouse sends them."""

    def __init__(self, limit):
        self.limit, self.hits = limit, []

    def headers(self, mode):
        now = time.time()
        self.hits = [t for t in self.hits if t > now - 10] + [now]
        rem = mode.get("remaining", max(self.limit - len(self.hits), 0))
        h = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(rem)}
        if "reset_in" in mode:
            h["X-RateLimit-Reset"] = str(int(now + mode["reset_in"]))
        return h


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
    # A listen backlog for the daemon's parallel connections (ats_receiver.py).
    http.server.ThreadingHTTPServer.request_queue_size = 128
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port),
                                          make_handler(args, vendor, limiter))
    print("READY", flush=True)
    srv.serve_forever()


# ---------------------------------------------------------------------------
# Ashby and Workable (helper "ats-vendors"). Each is a small in-memory
# vendor following the shapes of its published API (see docs/ats/<kind>.md
# for the sources): auth, lookup by email, create, attach to a job, note,
# the vendor's error bodies and rate-limit headers, 429 with Retry-After on
# demand, and signing of web hook bodies as the vendor signs them.
# ---------------------------------------------------------------------------
import base64 as _av_base64
import hashlib as _av_hashlib
import hmac as _av_hmac
import http.server as _av_http
import json as _av_json
import threading as _av_threading
import time as _av_time
import urllib.parse as _av_parse
import uuid as _av_uuid


class _AvVendor:
    """Common bookkeeping: every request is recorded; `fail` maps an
    endpoint name to a count of answers to replace with a 429 (Retry-After
    `retry_after` seconds)."""

    def __init__(self, retry_after="1"):
        self.lock = _av_threading.Lock()
        self.requests = []
        self.people = {}
        self.notes = []
        self.fail = {}
        self.retry_after = retry_after

    def record(self, method, path, headers, body):
        rec = {"t": _av_time.time(), "method": method, "path": path, "headers": dict(headers),
               "body": body, "status": None}
        with self.lock:
            self.requests.append(rec)
        return rec

    def calls(self, name):
        return [r for r in self.requests if self.endpoint(r["method"], r["path"]) == name]

    def should_fail(self, name):
        with self.lock:
            n = self.fail.get(name, 0)
            if n > 0:
                self.fail[name] = n - 1
                return True
        return False

    def add_person(self, email, name="Existing Person", **extra):
        pid = str(_av_uuid.uuid4())
        p = {"id": pid, "email": email, "name": name, "jobs": []}
        p.update(extra)
        with self.lock:
            self.people[pid] = p
        return pid

    def by_email(self, email):
        e = (email or "").strip().lower()
        return [p for p in self.people.values() if p["email"].lower() == e]


def _av_json_body(raw):
    try:
        v = _av_json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, ValueError):
        return None
    return v


class AshbyVendor(_AvVendor):
    """api.ashbyhq.com: POST /CATEGORY.method, Basic auth (key as user, empty
    password); missing key 401, wrong key 403; refused input is HTTP 200
    {"success": false, "errorInfo": {...}}."""

    kind = "ashby"

    def __init__(self, api_key, **kw):
        super().__init__(**kw)
        self.api_key = api_key
        self.jobs = {"job-backend": "Backend Engineer"}

    @staticmethod
    def endpoint(method, path):
        return path.split("?", 1)[0].lstrip("/")

    @staticmethod
    def _ok(results):
        return 200, {}, {"success": True, "results": results}

    @staticmethod
    def _err(code, message):
        return 200, {}, {"success": False, "errorInfo": {
            "code": code, "message": message, "requestId": _av_uuid.uuid4().hex[:26].upper()}}

    def _view(self, p):
        return {"id": p["id"], "name": p["name"],
                "primaryEmailAddress": {"value": p["email"], "type": "Personal", "isPrimary": True},
                "emailAddresses": [{"value": p["email"], "type": "Personal", "isPrimary": True}],
                "applicationIds": [a for a in p["jobs"]]}

    def handle(self, method, path, headers, raw):
        name = self.endpoint(method, path)
        auth = headers.get("Authorization")
        if not auth:
            return 401, {}, {"success": False, "errorInfo": {
                "code": "unauthenticated", "message": "Missing API key"}}
        want = "Basic " + _av_base64.b64encode((self.api_key + ":").encode()).decode()
        if auth != want:
            return 403, {}, {"success": False, "errorInfo": {
                "code": "invalid_api_key", "message": "Invalid or deactivated API key"}}
        if method != "POST" or headers.get("Content-Type", "").split(";")[0] != "application/json":
            return 200, {}, {"success": False, "errorInfo": {
                "code": "invalid_request", "message": "POST application/json expected"}}
        if self.should_fail(name):
            return 429, {"Retry-After": self.retry_after}, {"success": False, "errorInfo": {
                "code": "rate_limit_exceeded", "message": "Too many requests"}}
        b = _av_json_body(raw)
        if not isinstance(b, dict):
            return self._err("invalid_input", "The body must be a JSON object")
        return self._dispatch(name, b)

    def _dispatch(self, name, b):
        if name == "apiKey.info":
            return self._ok({"title": "warmbench test key", "createdAt": "2026-01-01T00:00:00Z"})
        if name == "job.info":
            if b.get("id") not in self.jobs:
                return self._err("job_not_found", "Job not found")
            return self._ok({"id": b["id"], "title": self.jobs[b["id"]], "status": "Open"})
        if name == "candidate.search":
            if not b.get("email") and not b.get("name"):
                return self._err("invalid_input", "email or name is required")
            return self._ok([self._view(p) for p in self.by_email(b.get("email"))])
        if name == "candidate.create":
            if not isinstance(b.get("name"), str) or not b["name"].strip():
                return self._err("invalid_input", "name is required")
            pid = self.add_person(b.get("email", ""), b["name"], position=b.get("position"),
                                  company=b.get("company"))
            return self._ok(self._view(self.people[pid]))
        if name == "application.create":
            p = self.people.get(b.get("candidateId"))
            if not p:
                return self._err("candidate_not_found", "Candidate not found")
            if b.get("jobId") not in self.jobs:
                return self._err("job_not_found", "Job not found")
            if b["jobId"] in p["jobs"]:
                return self._err("application_already_exists",
                                 "Candidate already has an active application for this job")
            p["jobs"].append(b["jobId"])
            return self._ok({"id": str(_av_uuid.uuid4()), "status": "Lead",
                             "candidate": {"id": p["id"]}, "job": {"id": b["jobId"]}})
        if name == "candidate.createNote":
            if b.get("candidateId") not in self.people:
                return self._err("candidate_not_found", "Candidate not found")
            note = b.get("note")
            text = note.get("value") if isinstance(note, dict) else note
            if not isinstance(text, str) or not text:
                return self._err("invalid_input", "note is required")
            self.notes.append({"candidateId": b["candidateId"], "text": text})
            return self._ok({"id": str(_av_uuid.uuid4()), "content": text})
        return 404, {}, {"success": False, "errorInfo": {"code": "not_found",
                                                         "message": "Unknown endpoint"}}

    # --- web hooks, as Ashby sends them ---
    @staticmethod
    def webhook(action, email, name="Silver Medal", status="Archived", cand_id="c-1",
                action_id=None):
        body = {"webhookActionId": action_id or str(_av_uuid.uuid4()), "action": action,
                "data": {"application": {
                    "id": str(_av_uuid.uuid4()), "status": status,
                    "createdAt": "2026-11-02T10:00:00.000Z", "updatedAt": "2026-12-06T08:00:00.000Z",
                    "archiveReason": {"id": "ar-1", "text": "Hired someone else",
                                      "reasonType": "RejectedByOrg"} if status == "Archived" else None,
                    "candidate": {"id": cand_id, "name": name,
                                  "primaryEmailAddress": {"value": email, "type": "Personal",
                                                          "isPrimary": True}},
                    "currentInterviewStage": {"id": "st-1", "title": "Archived" if status == "Archived"
                                              else "Offer", "type": status},
                    "job": {"id": "job-backend", "title": "Backend Engineer"}}}}
        return _av_json.dumps(body).encode()

    @staticmethod
    def sign(secret, raw):
        """The Ashby-Signature header value: sha256=HMAC-SHA256(secret, raw body)."""
        return "sha256=" + _av_hmac.new(secret, raw, _av_hashlib.sha256).hexdigest()


class WorkableVendor(_AvVendor):
    """SUB.workable.com/spi/v3: Bearer token; 10 requests per 10 s with
    X-Rate-Limit-Limit/-Remaining/-Reset on every answer and 429 above;
    errors {"error": "..."}."""

    kind = "workable"
    LIMIT, WINDOW = 10, 10.0

    def __init__(self, token, members=("m-recruiter",), window=10.0, **kw):
        super().__init__(**kw)
        self.WINDOW = window
        self.token = token
        self.members = set(members)
        self.jobs = {"JOB7": "Backend Engineer", "OTHER": "Frontend Engineer"}
        self.window_start = _av_time.time()
        self.window_used = 0

    @staticmethod
    def endpoint(method, path):
        p = path.split("?", 1)[0]
        parts = [x for x in p.split("/") if x][2:]  # drop spi, v3
        if len(parts) == 3 and parts[0] == "candidates":
            return method + " /candidates/:id/" + parts[2]
        if len(parts) == 3 and parts[0] == "jobs":
            return method + " /jobs/:shortcode/" + parts[2]
        if len(parts) == 2 and parts[0] == "jobs":
            return method + " /jobs/:shortcode"
        return method + " /" + "/".join(parts)

    def _rate(self):
        """The interval's headers; None when the request is over the limit."""
        now = _av_time.time()
        with self.lock:
            if now - self.window_start >= self.WINDOW:
                self.window_start, self.window_used = now, 0
            self.window_used += 1
            used = self.window_used
            reset = self.window_start + self.WINDOW
        h = {"X-Rate-Limit-Limit": str(self.LIMIT),
             "X-Rate-Limit-Remaining": str(max(self.LIMIT - used, 0)),
             "X-Rate-Limit-Reset": str(int(reset + 0.999))}
        return h, used <= self.LIMIT

    def _view(self, p, job=None):
        return {"id": p["id"], "name": p["name"], "firstname": p.get("firstname"),
                "lastname": p.get("lastname"), "headline": p.get("headline"),
                "account": {"subdomain": "acme", "name": "Acme"},
                "job": {"shortcode": job, "title": self.jobs.get(job)} if job else None,
                "stage": "sourced", "disqualified": False, "disqualification_reason": None,
                "sourced": True, "profile_url": "https://acme.workable.com/people/" + p["id"],
                "email": p["email"], "domain": "api", "created_at": "2026-12-06T08:00:00Z",
                "updated_at": "2026-12-06T08:00:00Z", "hired_at": None}

    def handle(self, method, path, headers, raw):
        name = self.endpoint(method, path)
        rate, ok = self._rate()
        if headers.get("Authorization") != "Bearer " + self.token:
            return 401, rate, {"error": "Not authorized"}
        if not ok:
            return 429, rate, {"error": "Too many requests"}
        if self.should_fail(name):
            return 429, dict(rate, **{"Retry-After": self.retry_after}), {
                "error": "Too many requests"}
        st, body = self._dispatch(method, name, path, _av_json_body(raw))
        return st, rate, body

    def _create(self, b, job):
        c = b.get("candidate") if isinstance(b, dict) else None
        if not isinstance(c, dict) or not c.get("email"):
            return 422, {"error": "Validation failed: Email can't be blank"}
        if not c.get("name") and not (c.get("firstname") and c.get("lastname")):
            return 422, {"error": "Validation failed: Name can't be blank"}
        if b.get("sourced") is not True:
            return 422, {"error": "test vendor: warmbench must create sourced candidates"}
        if job and job not in self.jobs:
            return 404, {"error": "Not found"}
        if job and any(job in p["jobs"] for p in self.by_email(c["email"])):
            return 422, {"error": "Validation failed: Candidate already exists in this job"}
        name = c.get("name") or "%s %s" % (c["firstname"], c["lastname"])
        pid = self.add_person(c["email"], name, firstname=c.get("firstname"),
                              lastname=c.get("lastname"), headline=c.get("headline"))
        if job:
            self.people[pid]["jobs"].append(job)
        return 201, {"status": "created", "candidate": self._view(self.people[pid], job)}

    def _member_ok(self, b):
        return isinstance(b, dict) and b.get("member_id") in self.members

    def _dispatch(self, method, name, path, b):
        q = _av_parse.parse_qs(_av_parse.urlsplit(path).query)
        seg = [x for x in path.split("?", 1)[0].split("/") if x]
        if name == "GET /stages":
            return 200, {"stages": [{"slug": "sourced", "name": "Sourced", "kind": "sourced"},
                                    {"slug": "hired", "name": "Hired", "kind": "hired"}]}
        if name == "GET /jobs/:shortcode":
            sc = _av_parse.unquote(seg[3])
            if sc not in self.jobs:
                return 404, {"error": "Not found"}
            return 200, {"shortcode": sc, "title": self.jobs[sc], "state": "published"}
        if name == "GET /candidates":
            out = []
            for p in self.by_email(q.get("email", [""])[0]):
                out += [self._view(p, j) for j in p["jobs"]] or [self._view(p)]
            return 200, {"candidates": out, "paging": {}}
        if name == "POST /jobs/:shortcode/candidates":
            return self._create(b, _av_parse.unquote(seg[3]))
        if name == "POST /talent_pool/candidates":
            return self._create(b, None)
        if name in ("POST /candidates/:id/comments", "POST /candidates/:id/copy"):
            p = self.people.get(_av_parse.unquote(seg[3]))
            if not p:
                return 404, {"error": "Not found"}
            if not self._member_ok(b):
                return 422, {"error": "Validation failed: member_id is invalid"}
            if name.endswith("/comments"):
                c = b.get("comment")
                if not isinstance(c, dict) or not c.get("body"):
                    return 422, {"error": "Validation failed: Body can't be blank"}
                self.notes.append({"candidateId": p["id"], "text": c["body"]})
                return 201, ""
            job = b.get("target_job_shortcode")
            if job not in self.jobs:
                return 404, {"error": "Not found"}
            if job not in p["jobs"]:
                p["jobs"].append(job)
            return 201, {"candidate": self._view(p, job)}
        return 404, {"error": "Not found"}

    # --- web hooks, as Workable sends them ---
    @staticmethod
    def webhook(event_type, email, disqualified=False, stage="interview", sourced=False,
                cand_id="c-1", event_id=None, fired_at=None):
        body = {"id": event_id or _av_uuid.uuid4().hex[:8], "event_type": event_type,
                "fired_at": fired_at or _av_time.strftime("%Y-%m-%dT%H:%M:%SZ", _av_time.gmtime()),
                "resource_type": "candidate",
                "data": {"id": cand_id, "name": "Silver Medal", "firstname": "Silver",
                         "lastname": "Medal", "headline": "Backend Engineer",
                         "account": {"subdomain": "acme", "name": "Acme"},
                         "job": {"shortcode": "JOB7", "title": "Backend Engineer"},
                         "stage": stage, "disqualified": disqualified,
                         "disqualification_reason": "Hired someone else" if disqualified else None,
                         "sourced": sourced, "email": email,
                         "created_at": "2026-11-02T10:00:00Z",
                         "hired_at": "2026-12-06T08:00:00Z" if stage == "hired" else None}}
        return _av_json.dumps(body).encode()

    @staticmethod
    def sign(secret, raw):
        """X-Workable-Signature: HMAC-SHA256(token, raw body), hex."""
        return _av_hmac.new(secret, raw, _av_hashlib.sha256).hexdigest()


def av_serve(vendor):
    """Runs vendor on 127.0.0.1 in a thread; returns (server, base_url)."""

    class Handler(_av_http.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def _any(self):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            rec = vendor.record(self.command, self.path, self.headers,
                                raw.decode("utf-8", "replace"))
            st, hdrs, body = vendor.handle(self.command, self.path, self.headers, raw)
            rec["status"] = st
            out = body.encode() if isinstance(body, str) else _av_json.dumps(body).encode()
            self.send_response(st)
            for k, v in hdrs.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "text/plain" if isinstance(body, str)
                             else "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PUT = do_PATCH = _any

    _av_http.ThreadingHTTPServer.request_queue_size = 128  # as in ats_receiver.py
    srv = _av_http.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    _av_threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, "http://127.0.0.1:%d" % srv.server_address[1]


class SmartRecruitersVendor(_AvVendor):
    """api.smartrecruiters.com: X-SmartToken; 10 requests per second and 8
    at once (X-RateLimit-* and X-RateLimit-Concurrent-* on every answer),
    429 above; errors {"errors": [{"code", "message"}]}."""

    kind = "smartrecruiters"
    LIMIT = 10

    def __init__(self, token, **kw):
        super().__init__(**kw)
        self.token = token
        self.jobs = {"job-uuid-1": "Backend Engineer"}
        self.shares = []
        self.second, self.used = int(_av_time.time()), 0

    @staticmethod
    def endpoint(method, path):
        seg = [x for x in path.split("?", 1)[0].split("/") if x]
        if len(seg) == 3 and seg[0] == "jobs":
            return method + " /jobs/:id/" + seg[2]
        if len(seg) == 2 and seg[0] in ("candidates", "jobs"):
            return method + " /%s/:id" % seg[0]
        return method + " /" + "/".join(seg)

    def _rate(self):
        now = int(_av_time.time())
        with self.lock:
            if now != self.second:
                self.second, self.used = now, 0
            self.used += 1
            used = self.used
        return {"X-RateLimit-Limit": str(self.LIMIT),
                "X-RateLimit-Remaining": str(max(self.LIMIT - used, 0)),
                "X-RateLimit-Concurrent-Limit": "8",
                "X-RateLimit-Concurrent-Remaining": "7"}, used <= self.LIMIT

    @staticmethod
    def _errors(code, message):
        return {"errors": [{"code": code, "message": message}]}

    def _view(self, p):
        a = [{"job": {"id": j}, "status": p.get("status", {}).get(j, "NEW")} for j in p["jobs"]]
        return {"id": p["id"], "firstName": p.get("firstName"), "lastName": p.get("lastName"),
                "email": p["email"], "primaryAssignment": a[0] if a else None,
                "secondaryAssignments": a[1:]}

    def handle(self, method, path, headers, raw):
        name = self.endpoint(method, path)
        rate, ok = self._rate()
        if headers.get("X-SmartToken") != self.token:
            return 401, rate, self._errors("UNAUTHORIZED", "Invalid or missing X-SmartToken")
        if not ok:
            return 429, rate, self._errors("TOO_MANY_REQUESTS", "Rate limit exceeded")
        if self.should_fail(name):
            return 429, dict(rate, **{"Retry-After": self.retry_after}), self._errors(
                "TOO_MANY_REQUESTS", "Rate limit exceeded")
        st, body = self._dispatch(method, name, path, _av_json_body(raw))
        return st, rate, body

    def _create(self, b, job):
        if not isinstance(b, dict) or not all(isinstance(b.get(k), str) and b[k]
                                              for k in ("firstName", "lastName", "email")):
            return 400, self._errors("INVALID_REQUEST", "firstName, lastName and email are required")
        if job and job not in self.jobs:
            return 404, self._errors("JOB_NOT_FOUND", "Job not found")
        pid = self.add_person(b["email"], "%s %s" % (b["firstName"], b["lastName"]),
                              firstName=b["firstName"], lastName=b["lastName"])
        if job:
            self.people[pid]["jobs"].append(job)
        return 201, self._view(self.people[pid])

    def _dispatch(self, method, name, path, b):
        seg = [x for x in path.split("?", 1)[0].split("/") if x]
        q = _av_parse.parse_qs(_av_parse.urlsplit(path).query)
        if name == "GET /configuration/sources":
            return 200, {"totalFound": 1, "content": [{"id": "api", "label": "API"}]}
        if name == "GET /jobs/:id":
            if seg[1] not in self.jobs:
                return 404, self._errors("JOB_NOT_FOUND", "Job not found")
            return 200, {"id": seg[1], "title": self.jobs[seg[1]]}
        if name == "GET /candidates":
            term = q.get("q", [""])[0].lower()
            hits = [self._view(p) for p in self.people.values() if term and term in p["email"].lower()]
            return 200, {"totalFound": len(hits), "limit": 100, "content": hits}
        if name == "GET /candidates/:id":
            p = self.people.get(seg[1])
            return (200, self._view(p)) if p else (404, self._errors("NOT_FOUND", "Candidate not found"))
        if name == "POST /candidates":
            return self._create(b, None)
        if name == "POST /jobs/:id/candidates":
            return self._create(b, seg[1])
        if name == "POST /messages/shares":
            if not isinstance(b, dict) or not isinstance(b.get("content"), str) or not b["content"]:
                return 400, self._errors("INVALID_REQUEST", "content is required")
            import re
            m = re.match(r"#\[CANDIDATE:([^\]]+)\]", b["content"])
            if m and m.group(1) in self.people:
                self.notes.append({"candidateId": m.group(1), "text": b["content"]})
            self.shares.append(b)
            return 201, {"id": str(_av_uuid.uuid4())}
        return 404, self._errors("NOT_FOUND", "Not found")

    # --- web hooks, as SmartRecruiters sends them ---
    @staticmethod
    def webhook(candidate_id, job_id, event_name="application.status.updated", event_id=None):
        raw = _av_json.dumps({"job_id": job_id, "candidate_id": candidate_id},
                             separators=(",", ":")).encode()
        headers = {"event-name": event_name, "event-id": event_id or str(_av_uuid.uuid4()),
                   "event-version": "v201910",
                   "link": "<https://api.smartrecruiters.com/candidates/%s>; rel=self" % candidate_id}
        return raw, headers

    @staticmethod
    def sign(secret, raw, headers, ts=None):
        """Adds smartrecruiters-timestamp and -signature (v1) to headers."""
        ts = str(int(_av_time.time()) if ts is None else ts)
        msg = b".".join([ts.encode(), raw] + [headers.get(k, "").encode() for k in
                                              ("event-id", "event-name", "event-version", "link")])
        headers = dict(headers)
        headers["smartrecruiters-timestamp"] = ts
        headers["smartrecruiters-signature"] = "v1=" + _av_hmac.new(secret, msg, _av_hashlib.sha256).hexdigest()
        return headers


if __name__ == "__main__":
    main()
