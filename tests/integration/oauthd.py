"""A test OAuth 2.0 authorization server for the integration tests (stdlib
http.server, one thread per request). Endpoints:

  POST /token       grant_type=refresh_token (RFC 6749 6) and
                    urn:ietf:params:oauth:grant-type:device_code (RFC 8628 3.4);
                    client_id must match, client_secret too when one is set
  POST /device      device authorization (RFC 8628 3.1)
  POST /introspect  token introspection (RFC 7662), for Dovecot and smtpd.py
  POST /control     a JSON object changing the behaviour (keys of set() below)
  GET  /control     {"requests": [...], "tokens": [...]} for tests in other processes

Access tokens expire after `expires_in` seconds (a few, so renewals show);
every refresh rotates the refresh token (the old one is dead at once, as
strict providers do). The device flow approves after `device_polls`
pending polls and answers slow_down to a poll sooner than `interval` after
the previous one. Every request is recorded with what it was answered,
and for a refresh how long the user's newest access token still had to
live (`prev_left_s`, negative when it had already expired), so a test can
show renewals before expiry. Records never hold a token.

In-process:  s = OAuthServer(expires_in=3).start(); s.add_refresh("ana@x");
             s.set(fail_503_s=5); s.requests(); s.stop()
As a process: oauthd.py --port P [--expires-in S] [--device-polls K]
             [--interval S] [--client-id ID] [--client-secret-file F]
             [--seed USER] [--log FILE]: prints "READY PORT" and, per
             --seed, "REFRESH USER TOKEN" lines; stops on SIGTERM.
"""
import argparse
import base64
import http.server
import json
import secrets
import signal
import sys
import threading
import time
import urllib.parse

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class OAuthServer:
    def __init__(self, port=0, expires_in=5, device_polls=2, interval=1, client_id="wb-test",
                 client_secret=None, log_path=None, device_user="user@example.com",
                 device_expires_in=600):
        self.lock = threading.Lock()
        self.port = port
        self.client_id = client_id
        self.client_secret = client_secret
        self.log_path = log_path
        self.cfg = {"expires_in": expires_in, "device_polls": device_polls,
                    "interval": interval, "device_user": device_user,
                    "device_expires_in": device_expires_in, "invalid_grant": False,
                    "fail_503_until": 0.0, "slow_down_next": 0, "deny": False,
                    "rotate": True}
        self.refresh = {}     # refresh token -> user
        self.access = {}      # access token -> (user, exp)
        self.newest_exp = {}  # user -> exp of the newest access token
        self.devices = {}     # device_code -> dict
        self.log = []
        self.issued = []      # every token handed out (tests look for leaks)
        self.httpd = None

    # --- control --------------------------------------------------------
    def set(self, **kw):
        """expires_in, device_polls, interval, device_user, invalid_grant
        (bool: every refresh answers invalid_grant), fail_503_s (the token
        endpoint answers 503 for that many seconds from now), slow_down_next
        (the next N device polls answer slow_down), deny (device flow ends
        in access_denied), rotate, revoke (a user: their refresh tokens die),
        add_refresh (a user: returns a new refresh token for them)."""
        out = {}
        with self.lock:
            for k, v in kw.items():
                if k == "fail_503_s":
                    self.cfg["fail_503_until"] = time.time() + float(v)
                elif k == "revoke":
                    for t in [t for t, u in self.refresh.items() if u == v]:
                        del self.refresh[t]
                elif k == "add_refresh":
                    out["refresh_token"] = self._new_refresh(v)
                elif k in self.cfg:
                    self.cfg[k] = v
                else:
                    raise KeyError(k)
        return out

    def add_refresh(self, user):
        return self.set(add_refresh=user)["refresh_token"]

    def revoke(self, user):
        self.set(revoke=user)

    def issue_access(self, user, expires_in=None):
        """An access token without a grant (for checking a server directly)."""
        with self.lock:
            return self._new_access(user, self.cfg["expires_in"] if expires_in is None
                                    else expires_in)

    def requests(self, path=None):
        with self.lock:
            return [dict(r) for r in self.log if path is None or r["path"] == path]

    def tokens(self):
        with self.lock:
            return list(self.issued)

    def url(self, path=""):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    # --- tokens ----------------------------------------------------------
    def _new_refresh(self, user):
        t = "rt-" + secrets.token_urlsafe(24)
        self.refresh[t] = user
        self.issued.append(t)
        return t

    def _new_access(self, user, expires_in):
        t = "at-" + secrets.token_urlsafe(24)
        exp = time.time() + expires_in
        self.access[t] = (user, exp)
        self.newest_exp[user] = exp
        self.issued.append(t)
        return t

    def _grant(self, user, rec, refresh=None):
        exp_in = self.cfg["expires_in"]
        at = self._new_access(user, exp_in)
        if refresh is None or self.cfg["rotate"]:
            if refresh is not None:
                del self.refresh[refresh]
                rec["rotated"] = True
            refresh = self._new_refresh(user)
        return 200, {"access_token": at, "token_type": "Bearer", "expires_in": exp_in,
                     "refresh_token": refresh, "scope": "mail"}

    def _record(self, rec):
        self.log.append(rec)
        if self.log_path:
            with open(self.log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")

    def _client_ok(self, form, headers):
        cid, secret = form.get("client_id"), form.get("client_secret")
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                cid, secret = urllib.parse.unquote(u), urllib.parse.unquote(p)
            except ValueError:
                return False
        if cid != self.client_id:
            return False
        return self.client_secret is None or secret == self.client_secret

    # --- endpoints (called with the lock held) -----------------------------
    def token(self, form, headers, rec):
        gt = form.get("grant_type", "")
        rec["grant_type"] = gt
        now = time.time()
        if now < self.cfg["fail_503_until"]:
            return 503, {"error": "temporarily_unavailable"}
        if not self._client_ok(form, headers):
            return 401, {"error": "invalid_client"}
        if gt == "refresh_token":
            rt = form.get("refresh_token", "")
            user = self.refresh.get(rt)
            rec["user"] = user
            if user and user in self.newest_exp:
                rec["prev_left_s"] = round(self.newest_exp[user] - now, 3)
            if self.cfg["invalid_grant"] or not user:
                return 400, {"error": "invalid_grant",
                             "error_description": "Token has been expired or revoked."}
            return self._grant(user, rec, rt)
        if gt == DEVICE_GRANT:
            d = self.devices.get(form.get("device_code", ""))
            if not d:
                return 400, {"error": "invalid_grant"}
            rec["user"] = d["user"]
            if now > d["expires_at"]:
                return 400, {"error": "expired_token"}
            if d["done"]:
                return 400, {"error": "invalid_grant"}
            too_soon = d["last_poll"] and now - d["last_poll"] < d["interval"] - 0.1
            d["last_poll"] = now
            if self.cfg["slow_down_next"] > 0 or too_soon:
                if self.cfg["slow_down_next"] > 0:
                    self.cfg["slow_down_next"] -= 1
                d["interval"] += 5  # RFC 8628 3.5: the client adds 5 s too
                return 400, {"error": "slow_down"}
            d["polls"] += 1
            if self.cfg["deny"]:
                d["done"] = True
                return 400, {"error": "access_denied"}
            if d["polls"] <= self.cfg["device_polls"]:
                return 400, {"error": "authorization_pending"}
            d["done"] = True
            return self._grant(d["user"], rec)
        return 400, {"error": "unsupported_grant_type"}

    def device(self, form, headers, rec):
        if not self._client_ok(form, headers):
            return 401, {"error": "invalid_client"}
        code = secrets.token_urlsafe(16)
        user_code = "%s-%s" % (secrets.token_hex(2).upper(), secrets.token_hex(2).upper())
        self.devices[code] = {"user": self.cfg["device_user"], "polls": 0, "last_poll": 0.0,
                              "interval": self.cfg["interval"], "done": False,
                              "expires_at": time.time() + self.cfg["device_expires_in"]}
        rec["scope"] = form.get("scope")
        return 200, {"device_code": code, "user_code": user_code,
                     "verification_uri": self.url("/device/verify"),
                     "verification_uri_complete": self.url("/device/verify?code=" + user_code),
                     "expires_in": self.cfg["device_expires_in"],
                     "interval": self.cfg["interval"]}

    def introspect(self, form, headers, rec):
        tok = form.get("token", "")
        if not tok and headers.get("Authorization", "").startswith("Bearer "):
            tok = headers["Authorization"][7:]
        user, exp = self.access.get(tok, (None, 0))
        now = time.time()
        rec["user"] = user
        rec["active"] = bool(user) and now < exp
        if not rec["active"]:
            return 200, {"active": False}
        return 200, {"active": True, "username": user, "sub": user, "email": user,
                     "exp": int(exp), "client_id": self.client_id, "scope": "mail",
                     "token_type": "Bearer"}

    # --- server ------------------------------------------------------------
    def start(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def answer(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                path = urllib.parse.urlsplit(self.path).path
                if path == "/control":
                    self.answer(200, {"requests": server.requests(), "tokens": server.tokens()})
                elif path == "/device/verify":
                    self.answer(200, {"note": "the test server approves by itself"})
                elif path == "/introspect":  # introspection_mode = get / auth
                    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                    self.endpoint("/introspect", q)
                else:
                    self.answer(404, {"error": "not_found"})

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0") or 0)
                raw = self.rfile.read(n)
                path = urllib.parse.urlsplit(self.path).path
                if path == "/control":
                    try:
                        self.answer(200, server.set(**json.loads(raw or b"{}")))
                    except (KeyError, ValueError, TypeError) as e:
                        self.answer(400, {"error": "bad control: %s" % e})
                    return
                form = dict(urllib.parse.parse_qsl(raw.decode("utf-8", "replace"),
                                                   keep_blank_values=True))
                self.endpoint(path, form)

            def endpoint(self, path, form):
                ep = {"/token": server.token, "/device": server.device,
                      "/introspect": server.introspect}.get(path)
                rec = {"t": time.time(), "path": path}
                with server.lock:
                    if ep is None:
                        status, obj = 404, {"error": "not_found"}
                    else:
                        status, obj = ep(form, self.headers, rec)
                    rec["status"] = status
                    if "error" in obj:
                        rec["error"] = obj["error"]
                    server._record(rec)
                self.answer(status, obj)

        # A listen backlog for parallel token requests (ats_receiver.py says why).
        http.server.ThreadingHTTPServer.request_queue_size = 128
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    @property
    def token_url(self):
        return self.url("/token")

    @property
    def device_url(self):
        return self.url("/device")

    @property
    def introspect_url(self):
        return self.url("/introspect")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--expires-in", type=int, default=5)
    p.add_argument("--device-polls", type=int, default=2)
    p.add_argument("--interval", type=float, default=1)
    p.add_argument("--client-id", default="wb-test")
    p.add_argument("--client-secret-file", default=None)
    p.add_argument("--seed", action="append", default=[], help="a user given a refresh token")
    p.add_argument("--log", default=None, help="append each request as a JSON line")
    a = p.parse_args()
    secret = None
    if a.client_secret_file:
        with open(a.client_secret_file) as f:
            secret = f.read().strip()
    s = OAuthServer(port=a.port, expires_in=a.expires_in, device_polls=a.device_polls,
                    interval=a.interval, client_id=a.client_id, client_secret=secret,
                    log_path=a.log).start()
    print("READY %d" % s.port, flush=True)
    for user in a.seed:
        print("REFRESH %s %s" % (user, s.add_refresh(user)), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(3600):
        pass
    s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
