"""Authentication, scopes and tenant isolation against a real coordinator:
no secret, no start; `coordinator mint-token` tokens work; every kind of bad
token is 401 with WWW-Authenticate; a missing scope is 403 forbidden; a
tenant never sees, lists or acts on another tenant's jobs (404) or
templates, and Idempotency-Keys are per tenant."""
import os
import subprocess
import time

from harness import Cluster, check, free_port, run

JOB = {"title": "Tenant job", "input_source": {"type": "rows", "rows": [
    {"idea_title": "One", "script_content": "Hello.", "duration_seconds": 2}]},
    "output": {"resolution": "720p", "output_bucket": "tenants"}}


def refuses_to_start_without_secret(a):
    binary = os.path.join(a.build, "coordinator", "coordinator")
    out = subprocess.run([binary, "--http-listen", f"127.0.0.1:{free_port()}",
                          "--nng-listen", f"tcp://127.0.0.1:{free_port()}",
                          "--db-path", "/nonexistent/never.db"],
                         capture_output=True, text=True, timeout=30)
    check(out.returncode == 2 and "jwt_secret" in out.stderr,
          f"expected a refusal naming jwt_secret: rc {out.returncode} {out.stderr}")
    out = subprocess.run([binary, "--jwt-secret", "too-short", "--db-path", "/nonexistent/x.db"],
                         capture_output=True, text=True, timeout=30)
    check(out.returncode == 2 and "32 bytes" in out.stderr, f"short secret: {out.stderr}")


def expect_401(c, token, what, path="/api/v1/bulk-jobs"):
    code, body = c.get(path, token=token)
    check(code == 401, f"{what}: {code} {body}")
    check(body["error_code"] == "unauthorized", f"{what}: {body}")
    auth = c.last_headers.get("www-authenticate", "")
    check(auth.startswith("Bearer realm=\"renderfarm\""), f"{what}: WWW-Authenticate {auth!r}")
    if token is not None:
        check('error="invalid_token"' in auth, f"{what}: WWW-Authenticate {auth!r}")
    else:
        check("error=" not in auth, f"no credentials should carry no error code: {auth!r}")
    check("ratelimit-policy" not in c.last_headers, f"{what}: a refused token is not counted")
    return body["error_message"]


def bad_tokens(c):
    s = c.secret
    expect_401(c, None, "no token")
    code, body = c.request("GET", "/api/v1/bulk-jobs", token=None,
                           headers={"Authorization": "Basic dXNlcjpwYXNz"})
    check(code == 401, f"Basic credentials: {code}")
    cases = {
        "expired": (c.mint(ttl=-120), "expired"),
        "not valid yet": (c.mint(now=None, extra={"nbf": 4102444800}), "not valid yet"),
        "issued in the future": (c.mint(extra={"iat": 4102444800}), "future"),
        "wrong secret": (c.mint(sign_with="x" * 40), "signature"),
        "alg none": (c.mint(alg="none"), "unsigned"),
        "alg none, signed": (c.mint(header={"alg": "none", "typ": "JWT"}), "not accepted"),
        "RS256 header": (c.mint(header={"alg": "RS256", "typ": "JWT"}), "RS256"),
        "no tenant": (c.mint(drop=("tenant",)), "tenant"),
        "no sub": (c.mint(drop=("sub",)), "sub"),
        "no exp": (c.mint(drop=("exp",)), "exp"),
        "malformed": ("not-a-jwt", "three segments"),
    }
    for what, (token, reason) in cases.items():
        msg = expect_401(c, token, what)
        check(reason in msg, f"{what}: reason {msg!r} does not mention {reason!r}")
    # a token made with the right secret passes (the control case)
    code, _ = c.get("/api/v1/bulk-jobs", token=mint_ok(s, c))
    check(code == 200, f"a good token was refused: {code}")


def mint_ok(secret, c):
    return c.mint(sub="control")


def cli_minted_token(a, c):
    binary = os.path.join(a.build, "coordinator", "coordinator")
    out = subprocess.run([binary, "mint-token", "--jwt-secret", c.secret, "--sub", "cli-user",
                          "--tenant", "cli-tenant", "--scope", "jobs:read", "--ttl", "60"],
                         capture_output=True, text=True, timeout=30)
    check(out.returncode == 0, f"mint-token: {out.stderr}")
    token = out.stdout.strip()
    check(token.count(".") == 2, f"mint-token printed {token!r}")
    code, body = c.get("/api/v1/bulk-jobs", token=token)
    check(code == 200 and body["jobs"] == [], f"cli token: {code} {body}")
    code, body = c.post("/api/v1/bulk-jobs", JOB, token=token)
    check(code == 403 and body["error_code"] == "forbidden", f"read-only token wrote: {code}")
    out = subprocess.run([binary, "mint-token", "--jwt-secret", "short"], capture_output=True,
                         text=True, timeout=30)
    check(out.returncode != 0, "mint-token accepted a short secret")


def scopes(c):
    reader = c.mint(sub="reader", scope="jobs:read")
    code, body = c.post("/api/v1/bulk-jobs", JOB, token=reader)
    check(code == 403 and body["error_code"] == "forbidden", f"POST without jobs:write: {code}")
    check("jobs:write" in body["error_message"], body["error_message"])
    auth = c.last_headers.get("www-authenticate", "")
    check('error="insufficient_scope"' in auth and 'scope="jobs:write"' in auth, auth)
    code, body = c.post("/api/bulk-jobs", JOB, token=reader)
    check(code == 403 and body["success"] is False and body["error"]["code"] == "forbidden",
          f"wrapped 403: {body}")
    code, _ = c.get("/api/v1/bulk-jobs", token=reader)
    check(code == 200, f"reader cannot list: {code}")
    writer = c.mint(sub="writer", scope="jobs:read jobs:write")
    code, body = c.post("/api/v1/templates", {"template_id": "t1", "name": "T"}, token=writer)
    check(code == 403 and "templates:write" in body["error_message"], f"templates: {code}")
    nothing = c.mint(sub="nobody", scope="")
    code, _ = c.get("/api/v1/bulk-jobs", token=nothing)
    check(code == 403, f"no scopes at all: {code}")


def tenants(c):
    alice = c.mint(sub="alice", tenant="acme")
    mallory = c.mint(sub="mallory", tenant="evil")
    code, job = c.post("/api/v1/bulk-jobs", JOB, token=alice,
                       headers={"Idempotency-Key": "shared-key"})
    check(code == 201, f"create: {code} {job}")
    jid = job["id"]
    check(job["created_by"] == "alice", f"created_by {job.get('created_by')}")
    for path in (f"/api/v1/bulk-jobs/{jid}", f"/api/v1/bulk-jobs/{jid}/progress",
                 f"/api/v1/bulk-jobs/{jid}/videos", f"/api/bulk-jobs/{jid}"):
        code, body = c.get(path, token=mallory)
        check(code == 404, f"{path} for another tenant: {code} {body}")
    for action in ("pause", "resume", "cancel", "retry"):
        code, body = c.post(f"/api/v1/bulk-jobs/{jid}/{action}", {}, token=mallory)
        check(code == 404, f"{action} of another tenant's job: {code} {body}")
    code, body = c.get("/api/v1/bulk-jobs", token=mallory)
    check(code == 200 and body["jobs"] == [] and body["total_count"] == 0,
          f"another tenant's list: {body}")
    code, body = c.get("/api/v1/bulk-jobs", token=alice)
    check([j["id"] for j in body["jobs"]] == [jid], f"own list: {body}")
    code, body = c.get(f"/api/v1/bulk-jobs/{jid}", token=alice)
    check(code == 200 and body["state"] == "pending", f"own job: {code} {body}")
    # the same Idempotency-Key in another tenant is another key
    other = dict(JOB, title="Other tenant, same key")
    code, body = c.post("/api/v1/bulk-jobs", other, token=mallory,
                        headers={"Idempotency-Key": "shared-key"})
    check(code == 201 and body["id"] != jid, f"idempotency keys leak across tenants: {code}")
    # custom templates are per tenant too
    code, _ = c.post("/api/v1/templates", {"template_id": "acme_look", "name": "Acme"},
                     token=alice)
    check(code == 201, f"template: {code}")
    code, _ = c.get("/api/v1/templates/acme_look", token=mallory)
    check(code == 404, f"another tenant's template: {code}")
    code, body = c.post("/api/v1/bulk-jobs",
                        dict(JOB, template={"template_id": "acme_look"}), token=mallory)
    check(code == 400 and body["detail"]["field"] == "template.template_id",
          f"another tenant's template in a job: {code} {body}")
    code, body = c.post(f"/api/v1/bulk-jobs/{jid}/cancel", {}, token=alice)
    check(code == 200 and body["state"] == "canceled", f"own cancel: {code} {body}")


def public_routes(c):
    code, body = c.get("/healthz", token=None)
    check(code == 200 and body == {"status": "ok"}, f"healthz: {code}")
    code, doc = c.get("/api/v1/openapi.json", token=None)
    check(code == 200 and doc["openapi"].startswith("3."), f"openapi: {code}")
    code, _ = c.get("/api/v1/bulk-jobs/job_x", token=None)
    check(code == 401, f"job read without a token: {code}")
    code, body = c.get("/api/v1/no-such-thing", token=None)
    check(code == 404 and body["error_code"] == "not_found", f"unknown path: {code}")


def correlation_in_log(c):
    code, _ = c.get("/api/v1/bulk-jobs", headers={"X-Correlation-Id": "auth-test-7"})
    check(code == 200 and c.last_headers.get("x-correlation-id") == "auth-test-7",
          f"correlation id: {c.last_headers}")
    # the line is written once the answer is sent: give it a moment
    deadline = time.time() + 5
    while True:
        line = [l for l in c.log("coordinator").splitlines() if "cid auth-test-7" in l]
        if line or time.time() > deadline:
            break
        time.sleep(0.05)
    check(line and "tenant default user it-user" in line[0], f"log line: {line}")


def main(a):
    refuses_to_start_without_secret(a)
    c = Cluster(a.build)
    ok = False
    try:
        bad_tokens(c)
        cli_minted_token(a, c)
        scopes(c)
        tenants(c)
        public_routes(c)
        correlation_in_log(c)
        ok = True
    finally:
        if not ok:
            print("--- coordinator log ---\n" + c.log("coordinator"))
        c.close()


run(main)
