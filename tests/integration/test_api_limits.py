"""Rate limits against a real coordinator with tiny quotas (3 requests per
minute per user, 5 per tenant): RateLimit headers on every limited answer,
429 rate_limited with Retry-After once a bucket is empty, per-tenant quotas
shared by users, tenants independent, health never limited. Also 413 for
oversized bodies (refused before they are read whole), 404 and 405 JSON."""
import re
import socket

from harness import Cluster, check, run

POLICY = '"user";q=3;w=60, "project";q=5;w=60'


def limited(c, token, n_ok):
    """n_ok requests pass with falling RateLimit numbers."""
    for i in range(n_ok):
        code, body = c.get("/api/v1/bulk-jobs", token=token)
        check(code == 200, f"request {i + 1} refused: {code} {body}")
        h = c.last_headers
        check(h.get("ratelimit-policy") == POLICY, f"RateLimit-Policy {h.get('ratelimit-policy')}")
        m = re.fullmatch(r'"user";r=(\d+);t=(\d+), "project";r=(\d+);t=(\d+)', h["ratelimit"])
        check(m is not None, f"RateLimit {h['ratelimit']!r}")
        check(int(h["ratelimit-remaining"]) <= int(m.group(1)), f"RateLimit-Remaining {h}")
        check(int(h["ratelimit-limit"]) in (3, 5), f"RateLimit-Limit {h}")
        check(int(h["ratelimit-reset"]) >= 1, f"RateLimit-Reset {h}")


def expect_429(c, token, policy, path="/api/v1/bulk-jobs"):
    code, body = c.get(path, token=token)
    check(code == 429, f"expected 429 ({policy}), got {code} {body}")
    check(body["error_code"] == "rate_limited", f"body {body}")
    check(body["detail"]["violated_policies"] == [policy], f"detail {body['detail']}")
    retry = int(c.last_headers.get("retry-after", "0"))
    # user: 3 per minute = a token every 20 s; project: 5 per minute = 12 s
    want = 20 if policy == "user" else 12
    check(1 <= retry <= want, f"Retry-After {retry}, expected 1..{want}")
    check(body["detail"]["retry_after_s"] == retry, f"detail vs header: {body['detail']}")
    check(c.last_headers.get("ratelimit-policy") == POLICY, "429 without RateLimit-Policy")
    return retry


def limits(c):
    alice = c.mint(sub="alice", tenant="acme")
    bob = c.mint(sub="bob", tenant="acme")
    carol = c.mint(sub="carol", tenant="acme")
    other = c.mint(sub="alice", tenant="other")
    limited(c, alice, 3)
    expect_429(c, alice, "user")
    # the wrapped style says the same
    code, body = c.get("/api/bulk-jobs", token=alice)
    check(code == 429 and body["error"]["code"] == "rate_limited", f"wrapped 429: {body}")
    # refused requests cost nothing: bob still has the 2 tokens left in acme
    limited(c, bob, 2)
    expect_429(c, carol, "project")
    # another tenant has its own buckets
    limited(c, other, 3)
    for _ in range(5):
        code, _ = c.get("/healthz", token=None)
        check(code == 200 and "ratelimit" not in c.last_headers, "healthz was limited")
    # a refused token is refused before it could use anyone's quota
    code, _ = c.get("/api/v1/bulk-jobs", token=c.mint(sub="x", tenant="fresh", ttl=-100))
    check(code == 401, f"expired token: {code}")


def raw_request(c, data):
    """Sends data and reads one whole response (headers and Content-Length
    bytes), without waiting for the server to close."""
    with socket.create_connection(("127.0.0.1", c.http_port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while True:
            end = out.find(b"\r\n\r\n")
            if end >= 0:
                m = re.search(rb"(?i)content-length: *(\d+)", out[:end])
                if m and len(out) >= end + 4 + int(m.group(1)):
                    return out
            chunk = s.recv(4096)
            if not chunk:
                return out
            out += chunk


def sizes_and_routes(c):
    token = c.mint(sub="sizer", tenant="sizes")
    # 413 from Content-Length before the body is read: send only the headers
    head = (f"POST /api/v1/bulk-jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 50000000\r\n"
            "Expect: 100-continue\r\n\r\n").encode()
    out = raw_request(c, head)
    check(out.startswith(b"HTTP/1.1 413"), f"oversized body: {out[:200]!r}")
    check(b'"payload_too_large"' in out, f"413 body: {out[-300:]!r}")
    code, body = c.request("DELETE", "/api/v1/bulk-jobs", token=token)
    check(code == 405 and body["error_code"] == "method_not_allowed", f"405: {code} {body}")
    check("GET" in c.last_headers.get("allow", "") and "POST" in c.last_headers["allow"],
          f"Allow: {c.last_headers.get('allow')}")
    code, body = c.get("/api/v1/bulk-jobs/job_x/nothing", token=token)
    check(code == 404 and body["error_code"] == "not_found", f"404: {code} {body}")


def main(a):
    c = Cluster(a.build, ["--rate-user-per-min", "3", "--rate-project-per-min", "5"])
    ok = False
    try:
        limits(c)
        sizes_and_routes(c)
        ok = True
    finally:
        if not ok:
            print("--- coordinator log ---\n" + c.log("coordinator"))
        c.close()


run(main)
