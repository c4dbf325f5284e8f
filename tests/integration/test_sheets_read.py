"""Reading Google Sheets through the coordinator's Sheets client (driven by
sheets_probe) against fake_google.py: the three kinds of access, token
caching and refresh, every error users hit, every range form, header mapping,
/sheets/connect with its validation levels, and a 1,000-row read."""
import json
import random
import sys
import time

from sheets_common import (API_KEY, HEADER, OTHER_EMAIL, SA_EMAIL, check, run_tests)

GUIDE_ROW = ["How to improve productivity", "Learn about AI tools", "busy professionals",
             "educational", "300", "youtube,tiktok", "Full script text...", "female", "modern",
             "normal"]

# Google leaves out trailing empty cells: rows are ragged.
PUBLIC_ROWS = [
    HEADER,
    GUIDE_ROW,
    ["Short row", "", "", "", "60", "", "Only what is needed"],
    ["كيف تحسن إنتاجيتك 🚀", "", "", "", "", "", "نص كامل"],
]

MESSY_ROWS = [
    HEADER,
    GUIDE_ROW,
    ["日本語のタイトル", "", "", "", "", "tiktok", "スクリプト"],
    [],
    ["No script here", "a description"],
    ["", "  "],
    ["Bad duration", "", "", "", "abc", "", "script"],
    ["", "", "", "", "", "", "A script without a title that goes on for a while."],
    ["עברית", "", "", "", "4000", "", "טקסט"],
]


def setup_sheets(g):
    g.add_sheet("pub1", [("Sheet1", PUBLIC_ROWS), ("My Sheet", [["idea_title"], ["From tab 2"]]),
                         ("Bob's Ideas", PUBLIC_ROWS)], link_public=True)
    g.add_sheet("priv1", [("Sheet1", PUBLIC_ROWS)], viewers=[SA_EMAIL])
    g.add_sheet("priv2", [("Sheet1", PUBLIC_ROWS)], viewers=[OTHER_EMAIL])
    g.add_sheet("messy", [("Sheet1", MESSY_ROWS)], link_public=True)
    # Columns in another order, spelled differently, with one we do not know.
    order = list(range(10))
    random.Random(4).shuffle(order)
    names = ["Idea Title", "DESCRIPTION", "target audience", "Tone", "Duration_Seconds",
             "platform preferences", "Script Content", "voice_preference", "style override",
             "PRIORITY"]
    shuffled = [[names[i] for i in order] + ["Notes"]]
    for r in PUBLIC_ROWS[1:]:
        full = r + [""] * (10 - len(r))
        row = [full[i] for i in order] + ["ignored"]
        while row and row[-1] == "":
            row.pop()
        shuffled.append(row)
    g.add_sheet("shuffled", [("Sheet1", shuffled)], link_public=True)
    # No header: the guide's letters.
    g.add_sheet("letters", [("Sheet1", [GUIDE_ROW, ["Second", "", "", "", "", "", "S2"]])],
                link_public=True)
    big = [HEADER] + [[f"Idea {i}: {'x' * 20}", f"Description {i}", "everyone", "upbeat",
                       str(30 + i % 60), "youtube,tiktok" if i % 2 else "instagram",
                       f"Script number {i}. " * 8, ["female", "male", "neutral"][i % 3],
                       "modern", ["low", "normal", "high"][i % 3]] for i in range(1000)]
    g.add_sheet("big", [("Sheet1", big)], link_public=True)
    g.add_sheet("big1001", [("Sheet1", big + [["One more", "", "", "", "", "", "s"]])],
                link_public=True)
    g.add_sheet("rows100", [("Sheet1", [HEADER] + [[f"t{i}", "", "", "", "", "", "s"]
                                                   for i in range(100)])], link_public=True)


def norm(rows):
    """Rows with empty cells dropped: a ragged row and a padded one are equal."""
    return [{"row": r["row"], "fields": {k: v for k, v in r["fields"].items() if v != ""}}
            for r in rows]


def fields_of(doc):
    return {r["row"]: r["fields"] for r in doc["rows"]}


# ---- access ----

def test_api_key(env):
    g = env.google
    doc = env.probe("fetch", "pub1", "A1:J100")
    check(doc["access"] == "api_key", doc)
    check(doc["range"] == "Sheet1!A1:J100", f"echoed range {doc['range']}")
    check(doc["header"] is True, "header not detected")
    f = fields_of(doc)
    check(sorted(f) == [2, 3, 4], f"row numbers {sorted(f)}")
    check(f[2]["script_content"] == "Full script text...", f[2])
    check(f[3] == {"idea_title": "Short row", "description": "", "target_audience": "",
                   "tone": "", "duration_seconds": "60", "platform_preferences": "",
                   "script_content": "Only what is needed"}, f"ragged row 3: {f[3]}")
    check(f[4]["idea_title"] == "كيف تحسن إنتاجيتك 🚀", f[4])
    (method, path, query, kind, _), = g.api_requests()
    check(path == "/v4/spreadsheets/pub1/values/A1%3AJ100", path)
    check(query == {"majorDimension": "ROWS", "valueRenderOption": "FORMATTED_VALUE",
                    "key": API_KEY}, query)
    check(kind == "key", kind)


def test_service_account_and_token_cache(env):
    g = env.google
    doc = env.probe("repeat", 5, 0, "priv1", "Sheet1!A1:J10", auth="sa")
    check(doc["token_requests"] == 1, f"{doc['token_requests']} token requests for 5 reads")
    check(g.token_requests == 1, f"fake saw {g.token_requests} token requests")
    reads = g.api_requests("GET")
    check(len(reads) == 5 and all(r[3] == "bearer" for r in reads), reads)
    check(all("key" not in r[2] for r in reads), "API key sent with a service account")
    doc = env.probe("fetch", "priv1", "Sheet1!A1:J10", auth="sa")
    check(doc["access"] == "service_account" and len(doc["rows"]) == 3, doc)


def test_threads_share_one_token(env):
    g = env.google
    doc = env.probe("parallel", 16, "priv1", "A1:J10", auth="sa")
    check(doc["reads_ok"] == 16, doc)
    check(doc["token_requests"] == 1 and g.token_requests == 1,
          f"{g.token_requests} token requests for 16 concurrent reads")


def test_token_refresh_on_expiry(env):
    g = env.google
    g.token_expires_in = 4
    try:
        before = g.token_requests
        # reads at 0 s, 2.5 s and 5 s: the first token serves the second read
        # (refreshed 0.4 s before its end) and has lapsed by the third
        doc = env.probe("repeat", 3, 2500, "priv1", "A1:J10", auth="sa")
        check(doc["token_requests"] == 2, f"{doc['token_requests']} token requests")
        check(g.token_requests - before == 2, "fake token count")
    finally:
        g.token_expires_in = 3599


def test_revoked_token_refreshed_once(env):
    g = env.google
    g.token_max_uses = 1  # the token stops working after one read
    try:
        doc = env.probe("repeat", 2, 0, "priv1", "A1:J10", auth="sa")
        check(doc["token_requests"] == 2, doc)
        check(len(g.api_requests("GET")) == 3, "expected read, 401, read again")
    finally:
        g.token_max_uses = None


def test_bad_service_account_key(env):
    doc = env.probe("fetch", "priv1", "A1:J10", auth="bad-sa", expect_ok=False)
    check(doc["error_code"] == "invalid_credentials", doc)
    check("Invalid JWT Signature" in doc["message"], doc["message"])
    check(env.google.token_failures[-1]["error_description"] == "Invalid JWT Signature.",
          env.google.token_failures)
    check(not env.google.api_requests(), "read sent without a token")


def test_clock_skew(env):
    g = env.google
    g.clock_offset = 7200  # Google's clock two hours ahead of ours
    try:
        doc = env.probe("fetch", "priv1", "A1:J10", auth="sa", expect_ok=False)
        check(doc["error_code"] == "invalid_credentials", doc)
        check("clock" in doc["message"], doc["message"])
    finally:
        g.clock_offset = 0


def test_csv_export_fallback(env):
    g = env.google
    api = env.probe("fetch", "pub1", "A1:J100")
    doc = env.probe("fetch", "pub1", "A1:J100", auth="none")
    check(doc["access"] == "csv_export", doc)
    check(norm(doc["rows"]) == norm(api["rows"]),
          f"CSV rows differ from API rows:\n{doc['rows']}\n{api['rows']}")
    paths = [r[1] for r in g.requests]
    check(paths.count("/spreadsheets/d/pub1/export") == 1, paths)
    check(any(p.startswith("/_export/") for p in paths), "307 redirect not followed")
    # a tab by name, and by gid
    doc = env.probe("fetch", "pub1", "'My Sheet'!A1:A5", auth="none")
    check(fields_of(doc)[2]["idea_title"] == "From tab 2", doc)
    check(any(r[2].get("sheet") == "My Sheet" for r in g.requests), g.requests[-3:])
    doc = env.probe("fetch", "pub1", "A1:A5", "1001", auth="none")
    check(fields_of(doc)[2]["idea_title"] == "From tab 2", doc)


def test_csv_export_private_sheet(env):
    doc = env.probe("fetch", "priv1", "A1:J10", auth="none", expect_ok=False)
    check(doc["error_code"] == "sheet_not_public", doc)
    check("Anyone with the link" in doc["message"], doc["message"])
    doc = env.probe("fetch", "nosuch", "A1:J10", auth="none", expect_ok=False)
    check(doc["error_code"] == "sheet_not_found", doc)


def test_no_access_configured(env):
    doc = env.probe("fetch", "pub1", "A1:J10", auth="none", extra=["--no-csv"],
                    expect_ok=False)
    check(doc["error_code"] == "invalid_credentials", doc)
    check(not env.google.requests, "a request went out")


# ---- errors ----

def test_errors(env):
    cases = [
        (("fetch", "nosuch", "A1:J10"), "key", "sheet_not_found", 404, "sheet_id"),
        (("fetch", "priv1", "A1:J10"), "key", "sheet_permission_denied", 403,
         "Anyone with the link"),
        (("fetch", "priv2", "A1:J10"), "sa", "sheet_permission_denied", 403, SA_EMAIL),
        (("fetch", "pub1", "Nope!A1:B2"), "key", "invalid_range", 400,
         "Unable to parse range: Nope!A1:B2"),
        (("fetch", "pub1", "A1:J5000"), "key", "invalid_range", 400, "exceeds grid limits"),
        (("fetch", "pub1", "A1:"), "key", "invalid_range", 0, "A1 notation"),
        (("fetch", "bad/id", "A1:J10"), "key", "invalid_sheet_id", 0, "sheet_id"),
    ]
    for argv, auth, code, status, text in cases:
        doc = env.probe(*argv, auth=auth, expect_ok=False)
        check(doc["error_code"] == code and doc["http_status"] == status,
              f"{argv}: {doc}")
        check(text in doc["message"], f"{argv}: '{text}' not in {doc['message']}")
    doc = env.probe("fetch", "pub1", "A1:J10", auth="none",
                    extra=["--api-key", "AIzaWRONG"], expect_ok=False)
    check(doc["error_code"] == "invalid_api_key" and doc["google_status"] == "INVALID_ARGUMENT",
          doc)


def test_rate_limit_retried(env):
    g = env.google
    from fake_google import RATE_LIMITED
    g.fail_queue[:] = [(429, RATE_LIMITED)] * 2
    doc = env.probe("fetch", "pub1", "A1:J10")
    check(len(doc["rows"]) == 3, doc)
    waits = [w["reason"] for w in doc["waits"]]
    check(waits == ["rate_limited", "rate_limited"], f"waits {doc['waits']}")
    check([w["attempt"] for w in doc["waits"]] == [1, 2], doc["waits"])
    # backoff grows: 50 ms then 100 ms, each jittered over its upper half
    check(25 <= doc["waits"][0]["ms"] <= 50 <= doc["waits"][1]["ms"] <= 100, doc["waits"])
    # past the bound: rate_limited with Google's message
    g.fail_queue[:] = [(429, RATE_LIMITED)] * 10
    doc = env.probe("fetch", "pub1", "A1:J10", extra=["--max-retries", "3"], expect_ok=False)
    check(doc["error_code"] == "rate_limited", doc)
    check("Quota exceeded" in doc["message"] and "4 tries" in doc["message"], doc["message"])
    check(len(doc["waits"]) == 3, doc["waits"])
    check(len(g.api_requests()) == 3 + 4, "requests sent")
    # the wait hook can stop the job's read
    g.fail_queue[:] = [(429, RATE_LIMITED)] * 10
    doc = env.probe("fetch", "pub1", "A1:J10", extra=["--stop-after-waits", "1"],
                    expect_ok=False)
    check(doc["error_code"] == "canceled", doc)


def test_unavailable_and_network(env):
    g = env.google
    from fake_google import UNAVAILABLE
    g.fail_queue[:] = [(503, UNAVAILABLE), "drop"]
    doc = env.probe("fetch", "pub1", "A1:J10")
    check([w["reason"] for w in doc["waits"]] == ["unavailable", "unavailable"], doc["waits"])
    g.fail_queue[:] = ["drop"] * 10
    doc = env.probe("fetch", "pub1", "A1:J10", extra=["--max-retries", "2"], expect_ok=False)
    check(doc["error_code"] == "service_unavailable" and "3 tries" in doc["message"], doc)
    g.fail_queue.clear()
    # nothing listening at all
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    doc = env.probe("fetch", "pub1", "A1:J10", expect_ok=False,
                    extra=["--api-base", f"http://127.0.0.1:{port}", "--max-retries", "1"])
    check(doc["error_code"] == "service_unavailable", doc)
    check("could not reach Google Sheets" in doc["message"], doc["message"])


# ---- ranges and columns ----

def test_range_forms(env):
    g = env.google
    cases = [
        # range, encoded path part, echoed range, rows read (row numbers), header
        ("A1:Z1000", "A1%3AZ1000", "Sheet1!A1:Z1000", [2, 3, 4], True),
        ("A2:J", "A2%3AJ", "Sheet1!A2:J1000", [2, 3, 4], False),
        ("A:J", "A%3AJ", "Sheet1!A1:J1000", [2, 3, 4], True),
        ("Sheet1!A1:J50", "Sheet1%21A1%3AJ50", "Sheet1!A1:J50", [2, 3, 4], True),
        ("'My Sheet'!A:A", "%27My%20Sheet%27%21A%3AA", "'My Sheet'!A1:A1000", [2], True),
        ("'Bob''s Ideas'!A1:J5", "%27Bob%27%27s%20Ideas%27%21A1%3AJ5", "'Bob''s Ideas'!A1:J5",
         [2, 3, 4], True),
        ("Sheet1", "Sheet1", "Sheet1!A1:Z1000", [2, 3, 4], True),
        ("1:2", "1%3A2", "Sheet1!A1:Z2", [2], True),
        ("A3:J3", "A3%3AJ3", "Sheet1!A3:J3", [3], False),
    ]
    for rng, enc, echo, rows, header in cases:
        g.reset_log()
        doc = env.probe("fetch", "pub1", rng)
        path = g.api_requests()[0][1]
        check(path == "/v4/spreadsheets/pub1/values/" + enc, f"{rng}: path {path}")
        check(doc["range"] == echo, f"{rng}: echo {doc['range']}")
        check(sorted(fields_of(doc)) == rows, f"{rng}: rows {sorted(fields_of(doc))}")
        check(doc["header"] is header, f"{rng}: header {doc['header']}")
    # no header: A..J letters, sheet row numbers
    doc = env.probe("fetch", "pub1", "A2:J")
    f = fields_of(doc)
    check(f[2]["idea_title"] == GUIDE_ROW[0] and f[2]["priority"] == "normal", f[2])


def test_shuffled_header(env):
    want = env.probe("fetch", "pub1", "A1:J10")
    doc = env.probe("fetch", "shuffled", "A1:K10")
    check(doc["header"] is True, doc)
    check(norm(doc["rows"]) == norm(want["rows"]),
          f"shuffled columns read differently:\n{doc['rows']}\n{want['rows']}")


def test_letters_without_header(env):
    doc = env.probe("fetch", "letters", "A1:J10")
    check(doc["header"] is False, doc)
    f = fields_of(doc)
    check(f[1]["idea_title"] == GUIDE_ROW[0] and f[1]["script_content"] == GUIDE_ROW[6], f)
    check(f[2]["script_content"] == "S2", f)


def test_row_limit(env):
    g = env.google
    doc = env.probe("fetch", "rows100", "A1:J100", extra=["--max-rows", "50"], expect_ok=False)
    check(doc["error_code"] == "range_too_large", doc)
    check(not g.api_requests(), "a too-large range was fetched")
    doc = env.probe("fetch", "rows100", "A1:J51", extra=["--max-rows", "50"])
    check(len(doc["rows"]) == 50 and not doc["truncated"], "51 rows incl. header fit")
    # open-ended: read, cut, and refused for a job / reported by connect
    doc = env.probe("fetch", "rows100", "A:J", extra=["--max-rows", "50"])
    check(doc["truncated"] and len(doc["rows"]) == 50, doc["truncated"])
    doc = env.probe("read", "rows100", "A:J", extra=["--max-rows", "50"], expect_ok=False)
    check(doc["error_code"] == "range_too_large" and "A1:J51" in doc["message"], doc)
    doc = env.probe("connect", "rows100", "A:J", extra=["--max-rows", "50"])
    check(doc["validation"]["valid"] is False, doc["validation"])
    check(any("more than 50 data rows" in e["message"] for e in doc["validation"]["errors"]),
          doc["validation"]["errors"])


def test_response_byte_limit(env):
    # Google's answer for 100 rows is a few KiB: over a 1 KiB limit the read
    # stops mid-body and says so, instead of buffering without bound.
    doc = env.probe("fetch", "rows100", "A1:J100", extra=["--max-response-bytes", "1024"],
                    expect_ok=False)
    check(doc["error_code"] == "range_too_large", doc)
    check("larger than 1024 bytes" in doc["message"], doc["message"])
    doc = env.probe("fetch", "rows100", "A1:J100", extra=["--max-response-bytes", "1048576"])
    check(len(doc["rows"]) == 99, len(doc["rows"]))  # the header row is not data


# ---- /sheets/connect ----

def seed_validate_sheet_data(connection):
    """The seeds' Python SheetManager.validate_sheet_data, as users run it."""
    from urllib.parse import urlparse
    sample = connection["sample"]
    errors, warnings = [], []
    missing = [c for c in ["A", "B", "C"] if c not in sample["columns"]]
    if missing:
        return {"valid": False, "errors": [f"Missing required columns: {', '.join(missing)}"],
                "warnings": warnings}
    for i, row in enumerate(sample["preview"]):
        if not row[0] or not row[0].strip():
            errors.append(f"Row {i + 1}: Title is required")
        if not row[1] or not row[1].strip():
            errors.append(f"Row {i + 1}: Script is required")
        if row[2]:
            u = urlparse(row[2])
            if not (u.scheme in ["http", "https"] and u.netloc):
                errors.append(f"Row {i + 1}: Image URL must be valid HTTP(S) URL")
    empty = sum(1 for row in sample["preview"] if not row[0] or not row[0].strip())
    if empty > 0:
        warnings.append(f"{empty} empty rows will be skipped")
    if sample["row_count"] > 1000:
        warnings.append("Large batch size may take extended processing time")
    return {"valid": len(errors) == 0, "errors": errors, "warnings": warnings}


def test_connect_clean_sheet(env):
    doc = env.probe("connect", "pub1", "A1:Z1000")
    check(doc["sheet_id"] == "pub1" and doc["range"] == "A1:Z1000", doc)
    check(doc["status"] == "connected" and doc["resolved_range"] == "Sheet1!A1:Z1000", doc)
    s = doc["sample"]
    check(s["columns"] == list("ABCDEFGHIJ"), s["columns"])
    check(s["row_count"] == 3 and s["empty_rows"] == 0, s)
    check(s["preview"][0][:3] == [GUIDE_ROW[0], GUIDE_ROW[6], ""], s["preview"][0])
    check(s["column_mapping"]["script_content"] == "G", s["column_mapping"])
    check(doc["validation"]["valid"] is True, doc["validation"])
    seed = seed_validate_sheet_data(doc)
    check(seed == {"valid": True, "errors": [], "warnings": []}, seed)


def test_connect_levels_on_messy_sheet(env):
    got = {}
    for level in ("strict", "moderate", "permissive"):
        doc = env.probe("connect", "messy", "A1:J100", level)
        v = doc["validation"]
        got[level] = v
        check(v["level"] == level, v)
        check(doc["sample"]["empty_rows"] == 2, doc["sample"])
        check("2 empty rows will be skipped" in v["warnings"], v["warnings"])
        for e in v["errors"]:
            check(e["message"].startswith(f"row {e['row']}: ") and e["field"], e)
    check(got["strict"]["rows"] == {"accepted": 1, "refused": 5, "skipped": 2, "repaired": 0},
          got["strict"]["rows"])
    check(got["moderate"]["rows"] == {"accepted": 2, "refused": 4, "skipped": 2, "repaired": 0},
          got["moderate"]["rows"])
    check(got["permissive"]["rows"] == {"accepted": 6, "refused": 0, "skipped": 2,
                                        "repaired": 4}, got["permissive"]["rows"])
    check(got["permissive"]["valid"] is True and got["moderate"]["valid"] is False, got)
    moderate_errors = {e["row"]: e for e in got["moderate"]["errors"]}
    check(moderate_errors[5]["field"] == "script_content", moderate_errors)
    check(moderate_errors[7]["message"] ==
          "row 7: duration_seconds must be a whole number of seconds (got 'abc')",
          moderate_errors[7])
    check(moderate_errors[8]["field"] == "idea_title", moderate_errors[8])
    check(moderate_errors[9]["message"] == "row 9: duration_seconds must be between 1 and 3600",
          moderate_errors[9])
    preview = env.probe("connect", "messy", "A1:J100")["sample"]["preview"]
    check(preview[1][0] == "日本語のタイトル", preview)


def test_connect_large_batch(env):
    doc = env.probe("connect", "big1001", "A:J")
    check(doc["sample"]["row_count"] == 1001, doc["sample"]["row_count"])
    check("Large batch size may take extended processing time" in doc["validation"]["warnings"],
          doc["validation"]["warnings"])
    check(seed_validate_sheet_data(doc)["warnings"] ==
          ["Large batch size may take extended processing time"], "seed warnings")


def test_1000_rows(env):
    t0 = time.monotonic()
    doc = env.probe("ingest", "big", "A1:J1001", "moderate")
    wall = (time.monotonic() - t0) * 1000
    check(doc["row_count"] == 1000 and doc["accepted"] == 1000 and doc["refused"] == 0, doc)
    print(f"     1,000-row sheet: fetched and parsed in {doc['read_ms']} ms, validated by "
          f"{doc['total_ms']} ms (probe process {wall:.0f} ms)", flush=True)
    check(doc["total_ms"] < 10000, "1,000 rows took over 10 s")
    doc = env.probe("ingest", "big", "A:J", "strict", auth="none")
    check(doc["accepted"] == 1000, "CSV export of 1,000 rows")


def main():
    tests = [test_api_key, test_threads_share_one_token, test_service_account_and_token_cache,
             test_token_refresh_on_expiry,
             test_revoked_token_refreshed_once, test_bad_service_account_key, test_clock_skew,
             test_csv_export_fallback, test_csv_export_private_sheet, test_no_access_configured,
             test_errors, test_rate_limit_retried, test_unavailable_and_network,
             test_range_forms, test_shuffled_header, test_letters_without_header, test_row_limit,
             test_response_byte_limit,
             test_connect_clean_sheet, test_connect_levels_on_messy_sheet,
             test_connect_large_batch, test_1000_rows]

    def with_sheets(t):
        def run(env):
            if not env.google.sheets:
                setup_sheets(env.google)
            t(env)
        run.__name__ = t.__name__
        return run

    return run_tests([with_sheets(t) for t in tests])


if __name__ == "__main__":
    sys.exit(main())
