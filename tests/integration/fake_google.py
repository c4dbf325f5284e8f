"""A local stand-in for the Google endpoints the coordinator talks to, bound to
127.0.0.1, standard library only. It answers as Google documents (see
the shared REFERENCE.md section A):

  GET  /v4/spreadsheets/{id}/values/{range}     spreadsheets.values.get
  POST /v4/spreadsheets/{id}/values:batchUpdate spreadsheets.values.batchUpdate
  POST /token                                   OAuth 2.0 JWT bearer grant
  GET  /spreadsheets/d/{id}/export?format=csv   CSV export (307 to /_export/...)

values.get: ?key= or Authorization: Bearer; majorDimension ROWS; the full
requested range echoed ("Sheet1!A1:J1000"); trailing empty cells and rows
left out (ragged); ranges past the tab's grid refused as Google does. Errors
are Google's JSON bodies: 404 NOT_FOUND, 403 PERMISSION_DENIED "The caller
does not have permission", 400 INVALID_ARGUMENT "Unable to parse range: ...",
400 API_KEY_INVALID with its ErrorInfo details, 403 "The request is missing
a valid API key.", 401 UNAUTHENTICATED, 429 RESOURCE_EXHAUSTED.

The token endpoint checks the assertion: header {"alg":"RS256","typ":"JWT"},
claims iss (a registered service account), scope, aud (this endpoint's URL),
iat near now, exp <= iat + 3600, and the RS256 signature against the
account's public key (verified with `openssl dgst -sha256 -verify`, Python's
standard library having no RSA).

Used in-process by the tests (FakeGoogle(...).start()); state is plain
attributes guarded by self.lock. Run it alone with
`python3 fake_google.py --port N` to poke at it by hand.
"""
import base64
import csv
import http.server
import io
import json
import os
import re
import secrets
import subprocess
import tempfile
import threading
import time
import urllib.parse

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE_READ = "https://www.googleapis.com/auth/spreadsheets.readonly"
SCOPE_WRITE = "https://www.googleapis.com/auth/spreadsheets"
MAX_COL = 18278


def google_error(code, message, status, reason=None, details=None):
    """Google's error body, as the Sheets API sends it."""
    err = {"code": code, "message": message}
    if reason is not None:
        err["errors"] = [{"message": message, "domain": "global", "reason": reason}]
    err["status"] = status
    if details is not None:
        err["details"] = details
    return {"error": err}


NOT_FOUND = google_error(404, "Requested entity was not found.", "NOT_FOUND", "notFound")
PERMISSION_DENIED = google_error(403, "The caller does not have permission",
                                 "PERMISSION_DENIED", "forbidden")
MISSING_KEY = google_error(403, "The request is missing a valid API key.", "PERMISSION_DENIED")
KEY_INVALID = google_error(
    400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT",
    details=[{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
              "domain": "googleapis.com", "metadata": {"service": "sheets.googleapis.com"}}])
UNAUTHENTICATED = google_error(
    401, "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project.", "UNAUTHENTICATED")
KEY_NOT_SUPPORTED = google_error(
    401, "API keys are not supported by this API. Expected OAuth2 access token or other "
    "authentication credentials that assert a principal. See "
    "https://cloud.google.com/docs/authentication", "UNAUTHENTICATED")
INSUFFICIENT_SCOPES = google_error(403, "Request had insufficient authentication scopes.",
                                   "PERMISSION_DENIED")
RATE_LIMITED = google_error(
    429, "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute "
    "per user' of service 'sheets.googleapis.com' for consumer 'project_number:123456789'.",
    "RESOURCE_EXHAUSTED")
UNAVAILABLE = google_error(503, "The service is currently unavailable.", "UNAVAILABLE")

LOGIN_PAGE = (b"<!DOCTYPE html><html lang=\"en\"><head><title>Google Sheets - sign in</title>"
              b"</head><body>Sign in to continue to Sheets</body></html>")


def unparseable(range_text):
    return google_error(400, f"Unable to parse range: {range_text}", "INVALID_ARGUMENT",
                        "badRequest")


# ---- A1 notation (Google's grammar, written independently of a1.c) ----

CELL = re.compile(r"^\$?([A-Za-z]{0,3})\$?([0-9]{0,8})$")


def col_number(letters):
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n


def col_letters(n):
    s = ""
    while n > 0:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


def quote_sheet(name):
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and not CELL.match(name):
        return name
    return "'" + name.replace("'", "''") + "'"


def parse_a1(text):
    """-> (sheet or None, c0, c1, r0, r1) with None for open ends, or None."""
    text = text.strip()
    sheet, ref = None, text
    if text.startswith("'"):
        m = re.match(r"^'((?:[^']|'')+)'(?:!(.*))?$", text, re.S)
        if not m:
            return None
        sheet = m.group(1).replace("''", "'")
        ref = m.group(2)
    elif "!" in text:
        sheet, ref = text.split("!", 1)
    if ref is None:
        return (sheet, 1, None, 1, None)
    parts = ref.split(":")
    toks = []
    for p in parts:
        m = CELL.match(p)
        if not m or (not m.group(1) and not m.group(2)):
            if sheet is None and len(parts) == 1:
                return (text, 1, None, 1, None)  # a bare tab name
            return None
        c = col_number(m.group(1)) if m.group(1) else None
        r = int(m.group(2)) if m.group(2) else None
        if (c is not None and c > MAX_COL) or r == 0:
            return None
        toks.append((c, r))
    if len(toks) == 1:
        c, r = toks[0]
        if c is None or r is None:
            if sheet is None:
                return (text, 1, None, 1, None)
            return None
        return (sheet, c, c, r, r)
    if len(toks) != 2:
        return None
    (ca, ra), (cb, rb) = toks
    if ca is not None and ra is not None and cb is not None and rb is not None:
        return (sheet, min(ca, cb), max(ca, cb), min(ra, rb), max(ra, rb))
    if ca is not None and cb is not None and rb is None:
        return (sheet, min(ca, cb), max(ca, cb), ra or 1, None)
    if ca is None and cb is None and ra is not None and rb is not None:
        return (sheet, 1, None, min(ra, rb), max(ra, rb))
    return None


class Tab:
    def __init__(self, name, rows, gid, grid_rows=None, grid_cols=None):
        self.name = name
        self.rows = [list(r) for r in rows]
        self.gid = gid
        width = max([len(r) for r in rows] + [0])
        self.grid_rows = grid_rows or max(1000, len(rows))
        self.grid_cols = grid_cols or max(26, width)

    def cell(self, r, c):
        if r - 1 < len(self.rows) and c - 1 < len(self.rows[r - 1]):
            return self.rows[r - 1][c - 1]
        return ""

    def put(self, r, c, value):
        while len(self.rows) < r:
            self.rows.append([])
        row = self.rows[r - 1]
        while len(row) < c:
            row.append("")
        row[c - 1] = value


class Spreadsheet:
    def __init__(self, sheet_id, tabs, link_public=False, viewers=(), editors=()):
        self.id = sheet_id
        self.tabs = []
        for i, (name, rows) in enumerate(tabs):
            self.tabs.append(Tab(name, rows, gid=0 if i == 0 else 1000 + i))
        self.link_public = link_public
        self.viewers = set(viewers)
        self.editors = set(editors)

    def tab(self, name):
        if name is None:
            return self.tabs[0]
        for t in self.tabs:
            if t.name == name:
                return t
        return None


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class FakeGoogle:
    def __init__(self, workdir=None):
        self.dir = workdir or tempfile.mkdtemp(prefix="fake-google-")
        self.lock = threading.Lock()
        self.sheets = {}
        self.api_keys = set()
        self.accounts = {}  # client_email -> public key PEM path
        self.tokens = {}  # token -> {"email", "scopes", "expires", "uses"}
        self.token_expires_in = 3599
        self.token_max_uses = None  # a token stops working after this many uses
        self.clock_offset = 0  # seconds added to the fake's idea of now
        self.token_requests = 0
        self.token_failures = []  # errors the token endpoint answered
        self.fail_queue = []  # next /v4 answers: (status, body) or "drop"
        self.requests = []  # (method, path, query dict, auth kind, time)
        self.writes = []  # batchUpdate bodies
        self.exports = {}
        handler = self._handler_class()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = None

    # ---- set-up helpers ----

    def add_sheet(self, sheet_id, tabs, **kw):
        with self.lock:
            self.sheets[sheet_id] = Spreadsheet(sheet_id, tabs, **kw)
        return self.sheets[sheet_id]

    def add_service_account(self, email, public_pem_path):
        self.accounts[email] = public_pem_path

    def key_file(self, path, email, private_pem_path):
        """Writes a key file as Google Cloud hands it out."""
        with open(private_pem_path) as f:
            pem = f.read()
        key = {
            "type": "service_account", "project_id": "render-farm-test",
            "private_key_id": secrets.token_hex(20), "private_key": pem,
            "client_email": email, "client_id": "123456789012345678901",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.base + "/token",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
                                    + urllib.parse.quote(email),
        }
        with open(path, "w") as f:
            json.dump(key, f, indent=2)
        return path

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def api_requests(self, method=None):
        with self.lock:
            return [r for r in self.requests if r[1].startswith("/v4/")
                    and (method is None or r[0] == method)]

    def reset_log(self):
        with self.lock:
            self.requests.clear()
            self.writes.clear()
            self.token_failures.clear()
            self.token_requests = 0
            self.tokens.clear()

    # ---- the endpoints ----

    def _now(self):
        return time.time() + self.clock_offset

    def _bearer(self, auth_header):
        """-> (token record or None, refusal body or None)."""
        token = auth_header[len("Bearer "):].strip()
        with self.lock:
            rec = self.tokens.get(token)
            if rec is None or rec["expires"] < self._now():
                return None, UNAUTHENTICATED
            rec["uses"] += 1
            if self.token_max_uses is not None and rec["uses"] > self.token_max_uses:
                return None, UNAUTHENTICATED
            return rec, None

    def token(self, form):
        """-> (status, body) for POST /token."""
        with self.lock:
            self.token_requests += 1

        def refuse(error, desc):
            body = {"error": error, "error_description": desc}
            with self.lock:
                self.token_failures.append(body)
            return 400, body

        if form.get("grant_type") != GRANT_TYPE:
            return refuse("unsupported_grant_type",
                          f"Invalid grant_type: {form.get('grant_type', '')}")
        parts = form.get("assertion", "").split(".")
        if len(parts) != 3:
            return refuse("invalid_grant", "Invalid JWT: malformed assertion")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
        except ValueError:
            return refuse("invalid_grant", "Invalid JWT: not base64url JSON")
        if header.get("alg") != "RS256" or header.get("typ", "JWT") != "JWT":
            return refuse("invalid_grant", "Invalid JWT: algorithm must be RS256")
        email = claims.get("iss")
        if email not in self.accounts:
            return refuse("invalid_grant", "Invalid grant: account not found")
        if claims.get("aud") != self.base + "/token":
            return refuse("invalid_grant", "Invalid JWT: audience mismatch")
        scopes = str(claims.get("scope", "")).split()
        if not scopes or any(s not in (SCOPE_READ, SCOPE_WRITE) for s in scopes):
            return refuse("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        iat, exp = claims.get("iat"), claims.get("exp")
        now = self._now()
        if (not isinstance(iat, int) or not isinstance(exp, int) or exp <= iat
                or exp - iat > 3600 or abs(iat - now) > 300 or exp < now):
            return refuse("invalid_grant",
                          "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                          "reasonable timeframe. Check your iat and exp values in the JWT claim.")
        if not self._signature_ok(email, (parts[0] + "." + parts[1]).encode(), sig):
            return refuse("invalid_grant", "Invalid JWT Signature.")
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = {"email": email, "scopes": scopes,
                                  "expires": now + self.token_expires_in, "uses": 0}
        return 200, {"access_token": token, "expires_in": self.token_expires_in,
                     "token_type": "Bearer"}

    def _signature_ok(self, email, signing_input, sig):
        with tempfile.TemporaryDirectory(dir=self.dir) as d:
            data, sigf = os.path.join(d, "in"), os.path.join(d, "sig")
            with open(data, "wb") as f:
                f.write(signing_input)
            with open(sigf, "wb") as f:
                f.write(sig)
            r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", self.accounts[email],
                                "-signature", sigf, data], capture_output=True, timeout=10)
            return r.returncode == 0 and b"Verified OK" in r.stdout

    def values_get(self, sheet_id, range_text, query, auth):
        """-> (status, body) for values.get."""
        who, refusal = self._who(query, auth)
        if refusal is not None:
            return refusal
        if query.get("majorDimension", "ROWS") != "ROWS":
            return 400, google_error(400, "majorDimension: only ROWS here", "INVALID_ARGUMENT")
        with self.lock:
            sheet = self.sheets.get(sheet_id)
            if sheet is None:
                return 404, NOT_FOUND
            if not self._may_read(sheet, who):
                return 403, PERMISSION_DENIED
            parsed = parse_a1(range_text)
            tab = sheet.tab(parsed[0]) if parsed else None
            if tab is None:
                return 400, unparseable(range_text)
            _, c0, c1, r0, r1 = parsed
            c1 = c1 or tab.grid_cols
            r1 = r1 or tab.grid_rows
            if r1 > tab.grid_rows or c1 > tab.grid_cols:
                return 400, google_error(
                    400, f"Range ({range_text}) exceeds grid limits. Max rows: {tab.grid_rows}, "
                    f"max columns: {tab.grid_cols}", "INVALID_ARGUMENT", "badRequest")
            values = []
            for r in range(r0, r1 + 1):
                row = [tab.cell(r, c) for c in range(c0, c1 + 1)]
                while row and row[-1] == "":
                    row.pop()
                values.append(row)
            while values and not values[-1]:
                values.pop()
            echo = f"{quote_sheet(tab.name)}!{col_letters(c0)}{r0}:{col_letters(c1)}{r1}"
        body = {"range": echo, "majorDimension": "ROWS"}
        if values:
            body["values"] = values
        return 200, body

    def batch_update(self, sheet_id, body, query, auth):
        if not auth.startswith("Bearer "):
            if "key" in query:
                return 401, KEY_NOT_SUPPORTED
            return 401, UNAUTHENTICATED
        rec, refusal = self._bearer(auth)
        if refusal is not None:
            return 401, refusal
        if SCOPE_WRITE not in rec["scopes"]:
            return 403, INSUFFICIENT_SCOPES
        with self.lock:
            sheet = self.sheets.get(sheet_id)
            if sheet is None:
                return 404, NOT_FOUND
            if rec["email"] not in sheet.editors:
                return 403, PERMISSION_DENIED
            if body.get("valueInputOption") not in ("RAW", "USER_ENTERED"):
                return 400, google_error(400, "Invalid valueInputOption: "
                                         + str(body.get("valueInputOption")), "INVALID_ARGUMENT",
                                         "badRequest")
            responses, cells, rows_total, cols_total = [], 0, 0, 0
            for d in body.get("data", []):
                parsed = parse_a1(d.get("range", ""))
                tab = sheet.tab(parsed[0]) if parsed else None
                if tab is None:
                    return 400, unparseable(d.get("range", ""))
                _, c0, c1, r0, r1 = parsed
                vals = d.get("values", [])
                if (r1 is not None and len(vals) > r1 - r0 + 1) or any(
                        c1 is not None and len(v) > c1 - c0 + 1 for v in vals):
                    return 400, google_error(400, "Requested writing within range ["
                                             + d["range"] + "], but tried writing past it.",
                                             "INVALID_ARGUMENT", "badRequest")
                n = 0
                for i, row in enumerate(vals):
                    for j, v in enumerate(row):
                        tab.put(r0 + i, c0 + j, v)
                        n += 1
                width = max([len(v) for v in vals] + [0])
                responses.append({"spreadsheetId": sheet_id, "updatedRange": d["range"],
                                  "updatedRows": len(vals), "updatedColumns": width,
                                  "updatedCells": n})
                cells += n
                rows_total += len(vals)
                cols_total = max(cols_total, width)
            self.writes.append(body)
        return 200, {"spreadsheetId": sheet_id, "totalUpdatedRows": rows_total,
                     "totalUpdatedColumns": cols_total, "totalUpdatedCells": cells,
                     "totalUpdatedSheets": 1 if responses else 0, "responses": responses}

    def _who(self, query, auth):
        """-> (("token", rec) | ("key", key), None) or (None, (status, body))."""
        if auth.startswith("Bearer "):
            rec, refusal = self._bearer(auth)
            if refusal is not None:
                return None, (401, refusal)
            if not set(rec["scopes"]) & {SCOPE_READ, SCOPE_WRITE}:
                return None, (403, INSUFFICIENT_SCOPES)
            return ("token", rec), None
        if "key" in query:
            if query["key"] not in self.api_keys:
                return None, (400, KEY_INVALID)
            return ("key", query["key"]), None
        return None, (403, MISSING_KEY)

    @staticmethod
    def _may_read(sheet, who):
        if sheet.link_public:
            return True
        return who[0] == "token" and (who[1]["email"] in sheet.viewers
                                      or who[1]["email"] in sheet.editors)

    def export(self, sheet_id, query):
        """-> (status, headers, body bytes) for the CSV export."""
        with self.lock:
            sheet = self.sheets.get(sheet_id)
            if sheet is None:
                return 404, {"Content-Type": "text/html; charset=utf-8"}, b"<html>Not Found</html>"
            if not sheet.link_public:
                return 200, {"Content-Type": "text/html; charset=utf-8"}, LOGIN_PAGE
            if query.get("format") != "csv":
                return 400, {"Content-Type": "text/html"}, b"<html>Bad format</html>"
            tab = None
            if "gid" in query:
                tab = next((t for t in sheet.tabs if str(t.gid) == query["gid"]), None)
            elif "sheet" in query:
                tab = sheet.tab(query["sheet"])
            else:
                tab = sheet.tabs[0]
            if tab is None:
                return 400, {"Content-Type": "text/html"}, b"<html>No such sheet</html>"
            width = max([len(r) for r in tab.rows] + [0])
            out = io.StringIO()
            w = csv.writer(out, lineterminator="\r\n")
            for r in tab.rows:
                w.writerow(list(r) + [""] * (width - len(r)))
            nonce = secrets.token_hex(8)
            self.exports[nonce] = out.getvalue().encode()
        # Google sends the browser on to a googleusercontent.com URL.
        return 307, {"Location": f"{self.base}/_export/{nonce}",
                     "Content-Type": "text/html; charset=UTF-8"}, b""

    def _handler_class(self):
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def _send(self, status, body, headers=None):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                hs = {"Content-Type": "application/json; charset=UTF-8"}
                hs.update(headers or {})
                for k, v in hs.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method):
                raw_path, _, raw_query = self.path.partition("?")
                query = dict(urllib.parse.parse_qsl(raw_query, keep_blank_values=True))
                auth = self.headers.get("Authorization", "")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with fake.lock:
                    fake.requests.append((method, raw_path, query,
                                          "bearer" if auth.startswith("Bearer ") else
                                          ("key" if "key" in query else "none"), time.time()))
                if raw_path.startswith("/v4/"):
                    with fake.lock:
                        injected = fake.fail_queue.pop(0) if fake.fail_queue else None
                    if injected == "drop":
                        self.close_connection = True
                        return  # no answer at all: the client sees an empty reply
                    if injected is not None:
                        status, ebody = injected
                        self._send(status, ebody, {"Retry-After": "0"} if status == 429 else {})
                        return
                m = re.fullmatch(r"/v4/spreadsheets/([^/]+)/values/([^/]+)", raw_path)
                if method == "GET" and m and not m.group(2).startswith(":"):
                    status, out = fake.values_get(m.group(1), urllib.parse.unquote(m.group(2)),
                                                  query, auth)
                    return self._send(status, out)
                m = re.fullmatch(r"/v4/spreadsheets/([^/]+)/values:batchUpdate", raw_path)
                if method == "POST" and m:
                    try:
                        doc = json.loads(body or b"{}")
                    except ValueError:
                        return self._send(400, google_error(400, "Invalid JSON payload received.",
                                                            "INVALID_ARGUMENT"))
                    status, out = fake.batch_update(m.group(1), doc, query, auth)
                    return self._send(status, out)
                if method == "POST" and raw_path == "/token":
                    form = dict(urllib.parse.parse_qsl(body.decode()))
                    status, out = fake.token(form)
                    return self._send(status, out)
                m = re.fullmatch(r"/spreadsheets/d/([^/]+)/export", raw_path)
                if method == "GET" and m:
                    status, headers, data = fake.export(m.group(1), query)
                    return self._send(status, data, headers)
                m = re.fullmatch(r"/_export/([0-9a-f]+)", raw_path)
                if method == "GET" and m and m.group(1) in fake.exports:
                    return self._send(200, fake.exports[m.group(1)],
                                      {"Content-Type": "text/csv"})
                self._send(404, NOT_FOUND)

            def do_GET(self):
                self._route("GET")

            def do_POST(self):
                self._route("POST")

        return Handler


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    g = FakeGoogle()
    g.server.server_close()
    g.server = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), g._handler_class())
    g.port = g.server.server_address[1]
    g.base = f"http://127.0.0.1:{g.port}"
    g.api_keys.add("test-key")
    g.add_sheet("demo", [("Sheet1", [["idea_title", "script_content"], ["Hello", "World"]])],
                link_public=True)
    print(f"fake Google on {g.base} (API key test-key, sheet demo)", flush=True)
    g.server.serve_forever()
