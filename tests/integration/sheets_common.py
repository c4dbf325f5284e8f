"""Shared set-up of the Sheets integration tests: a fake Google on 127.0.0.1,
RSA keys made for this run (never committed), and sheets_probe runs."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fake_google import FakeGoogle  # noqa: E402
from harness import SKIP, Failure, args, check  # noqa: E402,F401

SA_EMAIL = "renderer@render-farm-test.iam.gserviceaccount.com"
OTHER_EMAIL = "someone-else@render-farm-test.iam.gserviceaccount.com"
API_KEY = "AIzaSyFAKE-test-key-0123456789"

HEADER = ["idea_title", "description", "target_audience", "tone", "duration_seconds",
          "platform_preferences", "script_content", "voice_preference", "style_override",
          "priority"]


def genkey(d, name):
    priv = os.path.join(d, f"{name}.pem")
    pub = os.path.join(d, f"{name}.pub.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", priv], check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", priv, "-pubout", "-out", pub], check=True,
                   capture_output=True)
    return priv, pub


class Env:
    """The fake, the keys and the probe binary."""

    def __init__(self):
        a = args()
        self.probe_bin = os.path.join(a.build, "tests", "coordinator", "sheets_probe")
        if not os.path.exists(self.probe_bin):
            print(f"SKIP: {self.probe_bin} not built")
            sys.exit(SKIP)
        if shutil.which("openssl") is None:
            print("SKIP: openssl not found")
            sys.exit(SKIP)
        self.dir = tempfile.mkdtemp(prefix="rf-sheets-it-")
        self.google = FakeGoogle(self.dir).start()
        g = self.google
        g.api_keys.add(API_KEY)
        priv, pub = genkey(self.dir, "sa")
        wrong_priv, _ = genkey(self.dir, "wrong")
        g.add_service_account(SA_EMAIL, pub)
        self.key_file = g.key_file(os.path.join(self.dir, "sa.json"), SA_EMAIL, priv)
        # A key file whose private key is not the one Google knows for the account.
        self.bad_key_file = g.key_file(os.path.join(self.dir, "bad.json"), SA_EMAIL, wrong_priv)

    def close(self):
        self.google.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def probe(self, *argv, auth="key", extra=(), expect_ok=True, timeout=60):
        cmd = [self.probe_bin, "--api-base", self.google.base, "--csv-base", self.google.base]
        if auth == "key":
            cmd += ["--api-key", API_KEY]
        elif auth == "sa":
            cmd += ["--credentials", self.key_file]
        elif auth == "bad-sa":
            cmd += ["--credentials", self.bad_key_file]
        elif auth == "none":
            pass
        cmd += list(extra) + [str(a) for a in argv]
        r = subprocess.run(cmd, capture_output=True, timeout=timeout)
        out = r.stdout.decode().strip().splitlines()
        check(out, f"no output from {' '.join(cmd)}: rc {r.returncode}\n{r.stderr.decode()}")
        doc = json.loads(out[0])
        if expect_ok is not None:
            check(doc.get("ok") is expect_ok and r.returncode == (0 if expect_ok else 1),
                  f"{' '.join(cmd[1:])}: rc {r.returncode} {doc}\n{r.stderr.decode()[-2000:]}")
        return doc


def run_tests(tests):
    env = Env()
    failed = 0
    try:
        for t in tests:
            env.google.reset_log()
            env.google.fail_queue.clear()
            try:
                t(env)
                print(f"ok   {t.__name__}", flush=True)
            except (Failure, AssertionError, KeyError, json.JSONDecodeError) as e:
                failed += 1
                print(f"FAIL {t.__name__}: {e}", flush=True)
    finally:
        env.close()
    print(f"{len(tests) - failed}/{len(tests)} passed")
    return 1 if failed else 0
