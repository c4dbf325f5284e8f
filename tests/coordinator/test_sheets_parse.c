/* The pure parts of the Sheets input: Google's error bodies to our error
 * codes, values.get answers and CSV exports to cell tables, header and
 * letter mapping, the /sheets/connect report, the service-account assertion
 * (RS256, checked with a key generated here) and the write-back plan. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "gauth.h"
#include "sheets.h"
#include "sheets_connect.h"
#include "writeback.h"

/* ---- error bodies, as Google sends them (see docs REFERENCE A2) ---- */

typedef struct err_case {
    long status;
    const char *body;
    rf_sheets_access access;
    bool write;
    const char *code;
    rf_err rv;
    const char *must_contain; /* in our message */
} err_case;

static const err_case err_cases[] = {
    {404,
     "{\"error\":{\"code\":404,\"message\":\"Requested entity was not found.\",\"errors\":[{"
     "\"message\":\"Requested entity was not found.\",\"domain\":\"global\",\"reason\":"
     "\"notFound\"}],\"status\":\"NOT_FOUND\"}}",
     RF_SHEETS_ACCESS_API_KEY, false, "sheet_not_found", RF_ENOTFOUND, "between /d/ and /edit"},
    {403,
     "{\"error\":{\"code\":403,\"message\":\"The caller does not have permission\",\"errors\":[{"
     "\"message\":\"The caller does not have permission\",\"domain\":\"global\",\"reason\":"
     "\"forbidden\"}],\"status\":\"PERMISSION_DENIED\"}}",
     RF_SHEETS_ACCESS_SERVICE_ACCOUNT, false, "sheet_permission_denied", RF_EINVAL,
     "share the sheet with reader@proj.iam.gserviceaccount.com as Viewer, or make it viewable "
     "by anyone with the link"},
    {403,
     "{\"error\":{\"code\":403,\"message\":\"The caller does not have permission\",\"errors\":[{"
     "\"message\":\"The caller does not have permission\",\"domain\":\"global\",\"reason\":"
     "\"forbidden\"}],\"status\":\"PERMISSION_DENIED\"}}",
     RF_SHEETS_ACCESS_SERVICE_ACCOUNT, true, "sheet_permission_denied", RF_EINVAL,
     "share the sheet with reader@proj.iam.gserviceaccount.com as Editor"},
    {403,
     "{\"error\":{\"code\":403,\"message\":\"The caller does not have permission\",\"errors\":[{"
     "\"message\":\"The caller does not have permission\",\"domain\":\"global\",\"reason\":"
     "\"forbidden\"}],\"status\":\"PERMISSION_DENIED\"}}",
     RF_SHEETS_ACCESS_API_KEY, false, "sheet_permission_denied", RF_EINVAL, "Anyone with the link"},
    {400,
     "{\"error\":{\"code\":400,\"message\":\"Unable to parse range: Class Data!A2:E\",\"errors\":"
     "[{\"message\":\"Unable to parse range: Class Data!A2:E\",\"domain\":\"global\",\"reason\":"
     "\"badRequest\"}],\"status\":\"INVALID_ARGUMENT\"}}",
     RF_SHEETS_ACCESS_API_KEY, false, "invalid_range", RF_EINVAL,
     "Unable to parse range: Class Data!A2:E"},
    {400,
     "{\"error\":{\"code\":400,\"message\":\"Range ('Sheet1'!A1:J5000) exceeds grid limits. Max "
     "rows: 1000, max columns: 26\",\"status\":\"INVALID_ARGUMENT\"}}",
     RF_SHEETS_ACCESS_API_KEY, false, "invalid_range", RF_EINVAL, "open-ended one such as A2:J"},
    {403,
     "{\"error\":{\"code\":403,\"message\":\"The request is missing a valid API key.\","
     "\"status\":\"PERMISSION_DENIED\"}}",
     RF_SHEETS_ACCESS_API_KEY, false, "invalid_api_key", RF_EINVAL, "configure sheets_api_key"},
    {400,
     "{\"error\":{\"code\":400,\"message\":\"API key not valid. Please pass a valid API key.\","
     "\"status\":\"INVALID_ARGUMENT\",\"details\":[{\"@type\":\"type.googleapis.com/"
     "google.rpc.ErrorInfo\",\"reason\":\"API_KEY_INVALID\",\"domain\":\"googleapis.com\","
     "\"metadata\":{\"service\":\"sheets.googleapis.com\"}}]}}",
     RF_SHEETS_ACCESS_API_KEY, false, "invalid_api_key", RF_EINVAL, "set sheets_api_key"},
    {403,
     "{\"error\":{\"code\":403,\"message\":\"Google Sheets API has not been used in project 1 "
     "before or it is disabled.\",\"status\":\"PERMISSION_DENIED\",\"details\":[{\"@type\":"
     "\"type.googleapis.com/google.rpc.ErrorInfo\",\"reason\":\"SERVICE_DISABLED\"}]}}",
     RF_SHEETS_ACCESS_API_KEY, false, "sheets_api_disabled", RF_EINVAL, "enable it"},
    {429,
     "{\"error\":{\"code\":429,\"message\":\"Quota exceeded for quota metric 'Read requests' and "
     "limit 'Read requests per minute per user' of service 'sheets.googleapis.com' for consumer "
     "'project_number:123456'.\",\"status\":\"RESOURCE_EXHAUSTED\"}}",
     RF_SHEETS_ACCESS_SERVICE_ACCOUNT, false, "rate_limited", RF_ENET, "Quota exceeded"},
    {503,
     "{\"error\":{\"code\":503,\"message\":\"The service is currently unavailable.\",\"status\":"
     "\"UNAVAILABLE\"}}",
     RF_SHEETS_ACCESS_API_KEY, false, "service_unavailable", RF_ENET, "retry later"},
    {502, "<html>Bad Gateway</html>", RF_SHEETS_ACCESS_API_KEY, false, "service_unavailable",
     RF_ENET, "HTTP 502"},
    {401,
     "{\"error\":{\"code\":401,\"message\":\"Request had invalid authentication credentials.\","
     "\"status\":\"UNAUTHENTICATED\"}}",
     RF_SHEETS_ACCESS_SERVICE_ACCOUNT, false, "invalid_credentials", RF_EINVAL,
     "invalid authentication credentials"},
    {401,
     "{\"error\":{\"code\":401,\"message\":\"API keys are not supported by this API.\","
     "\"status\":\"UNAUTHENTICATED\"}}",
     RF_SHEETS_ACCESS_API_KEY, true, "writeback_not_allowed", RF_EINVAL, "service account"},
    {403, "<!DOCTYPE html><html>Sign in</html>", RF_SHEETS_ACCESS_CSV_EXPORT, false,
     "sheet_not_public", RF_EINVAL, "Anyone with the link"},
    {404, "Not Found", RF_SHEETS_ACCESS_CSV_EXPORT, false, "sheet_not_found", RF_ENOTFOUND,
     "sheet_id"},
    {400, "{\"error\":{\"code\":400,\"message\":\"Invalid valueInputOption\"}}",
     RF_SHEETS_ACCESS_SERVICE_ACCOUNT, true, "sheet_request_invalid", RF_EINVAL,
     "Invalid valueInputOption"},
};

static void
test_error_mapping(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
        const err_case *c = &err_cases[i];
        rf_sheets_errctx ctx = {.sheet_id = "1A2B3C",
                                .range = "A1:J10",
                                .access = c->access,
                                .client_email = "reader@proj.iam.gserviceaccount.com",
                                .write = c->write};
        rf_gerror e;
        rf_err rv;

        memset(&e, 0, sizeof(e));
        rv = rf_sheets_map_error(c->status, c->body, strlen(c->body), &ctx, &e);
        if (strcmp(e.code, c->code) != 0 || rv != c->rv) {
            fail_msg("case %zu (HTTP %ld): code %s rv %d, want %s %d", i, c->status, e.code, rv,
                     c->code, c->rv);
        }
        if (strstr(e.message, c->must_contain) == NULL) {
            fail_msg("case %zu: message '%s' lacks '%s'", i, e.message, c->must_contain);
        }
        assert_int_equal(e.http_status, c->status);
    }
    assert_int_equal(rf_sheets_error_http_status("sheet_not_found"), 404);
    assert_int_equal(rf_sheets_error_http_status("sheet_permission_denied"), 403);
    assert_int_equal(rf_sheets_error_http_status("rate_limited"), 429);
    assert_int_equal(rf_sheets_error_http_status("service_unavailable"), 503);
    assert_int_equal(rf_sheets_error_http_status("invalid_range"), 400);
    assert_int_equal(rf_sheets_error_http_status("whatever"), 500);
}

/* ---- values.get answers ---- */

static rf_a1_range
range_of(const char *text)
{
    rf_a1_range r;
    assert_int_equal(rf_a1_parse(text, &r, NULL, 0), RF_OK);
    return r;
}

static void
test_values_ragged(void **state)
{
    /* Google leaves out trailing empty cells and rows; a row in the middle
     * with nothing in it comes as []. */
    const char *json = "{\"range\":\"Sheet1!A1:J1000\",\"majorDimension\":\"ROWS\",\"values\":["
                       "[\"idea_title\",\"script_content\"],[\"T1\",\"S1\",\"\",\"x\"],[],"
                       "[\"T3\"],[12,true,null,1.5]]}";
    rf_a1_range r = range_of("A1:J1000");
    rf_sheet_values v;
    rf_gerror e;

    (void)state;
    assert_int_equal(rf_sheets_values_parse(json, strlen(json), &r, 100, &v, &e), RF_OK);
    assert_string_equal(v.range, "Sheet1!A1:J1000");
    assert_int_equal(v.table.n, 5);
    assert_int_equal(v.table.recs[1].n, 4);
    assert_string_equal(v.table.recs[1].cells[3], "x");
    assert_int_equal(v.table.recs[2].n, 0);
    assert_int_equal(v.table.recs[3].n, 1);
    assert_string_equal(v.table.recs[4].cells[0], "12");
    assert_string_equal(v.table.recs[4].cells[1], "TRUE");
    assert_string_equal(v.table.recs[4].cells[2], "");
    assert_string_equal(v.table.recs[4].cells[3], "1.5");
    assert_false(v.truncated);
    rf_sheet_values_clear(&v);

    /* an empty range has no "values" at all */
    json = "{\"range\":\"Sheet1!A1:J10\",\"majorDimension\":\"ROWS\"}";
    assert_int_equal(rf_sheets_values_parse(json, strlen(json), &r, 100, &v, &e), RF_OK);
    assert_int_equal(v.table.n, 0);
    rf_sheet_values_clear(&v);

    /* more rows than kept: truncated */
    json = "{\"values\":[[\"a\"],[\"b\"],[\"c\"],[\"d\"]]}";
    assert_int_equal(rf_sheets_values_parse(json, strlen(json), &r, 3, &v, &e), RF_OK);
    assert_int_equal(v.table.n, 3);
    assert_true(v.truncated);
    assert_string_equal(v.range, "A1:J1000"); /* no echo: the request */
    rf_sheet_values_clear(&v);
}

static void
test_values_refused(void **state)
{
    static const char *const bad[] = {
        "not json",
        "[1,2]",
        "{\"majorDimension\":\"COLUMNS\",\"values\":[[\"a\"]]}",
        "{\"values\":\"abc\"}",
        "{\"values\":[\"abc\"]}",
        "{\"values\":[[{\"a\":1}]]}",
    };
    rf_a1_range r = range_of("A1:B2");

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rf_sheet_values v;
        rf_gerror e;
        memset(&e, 0, sizeof(e));
        assert_int_equal(rf_sheets_values_parse(bad[i], strlen(bad[i]), &r, 10, &v, &e), RF_EINVAL);
        assert_string_equal(e.code, "sheet_data_invalid");
        assert_int_equal(v.table.n, 0);
        rf_sheet_values_clear(&v);
    }
}

static void
test_csv_crop(void **state)
{
    /* the export is the whole tab; B2:C4 keeps columns B..C of rows 2..4 */
    const char *csv = "h1,h2,h3,h4\r\na,b,c,d\r\ne,,,h\r\ni,j,\"k,1\",l\r\nm,n,o,p\r\n,,,\r\n";
    rf_a1_range r = range_of("B2:C4");
    rf_sheet_values v;
    rf_gerror e;

    (void)state;
    assert_int_equal(rf_sheets_csv_values(csv, strlen(csv), &r, 100, &v, &e), RF_OK);
    assert_int_equal(v.row_start, 2);
    assert_int_equal(v.col_start, 2);
    assert_int_equal(v.table.n, 3);
    assert_int_equal(v.table.recs[0].n, 2);
    assert_string_equal(v.table.recs[0].cells[0], "b");
    assert_int_equal(v.table.recs[1].n, 0); /* ",," trimmed like Google's JSON */
    assert_string_equal(v.table.recs[2].cells[1], "k,1");
    rf_sheet_values_clear(&v);

    /* open-ended: trailing empty records dropped, then the row cap */
    r = range_of("A2:D");
    assert_int_equal(rf_sheets_csv_values(csv, strlen(csv), &r, 10, &v, &e), RF_OK);
    assert_int_equal(v.table.n, 4);
    assert_false(v.truncated);
    rf_sheet_values_clear(&v);
    assert_int_equal(rf_sheets_csv_values(csv, strlen(csv), &r, 2, &v, &e), RF_OK);
    assert_int_equal(v.table.n, 2);
    assert_true(v.truncated);
    rf_sheet_values_clear(&v);

    assert_int_equal(rf_sheets_csv_values("a,\"b", 4, &r, 10, &v, &e), RF_EINVAL);
    assert_string_equal(e.code, "sheet_data_invalid");
}

/* ---- mapping to rows ---- */

/* A field left of the range reads as absent or empty. */
static bool
blank(const char *s)
{
    return s == NULL || s[0] == '\0';
}

static void
values_from(const char *json, const char *range, rf_sheet_values *v)
{
    rf_a1_range r = range_of(range);
    rf_gerror e;
    if (rf_sheets_values_parse(json, strlen(json), &r, 100000, v, &e) != RF_OK) {
        fail_msg("values refused: %s", e.message);
    }
}

static void
test_header_shuffled(void **state)
{
    /* header names in another order, other spellings, an unknown column */
    const char *json =
        "{\"values\":[[\"Priority\",\"Script Content\",\"image_url\",\"IDEA TITLE\",\"duration\","
        "\"voice_preference\"],[\"high\",\"the script\",\"http://x\",\"The title\",\"90\"],[],"
        "[\"\",\"s2\",\"\",\"t2\"]]}";
    rf_sheet_values v;
    rf_rows rows;
    bool header = false;

    (void)state;
    values_from(json, "Ideas!A5:F", &v);
    assert_int_equal(rf_sheet_values_to_rows(&v, &rows, &header), RF_OK);
    assert_true(header);
    assert_int_equal(rows.n, 3);
    assert_int_equal(rows.rows[0].row_number, 6); /* header on sheet row 5 */
    assert_string_equal(rows.rows[0].fields[RF_F_IDEA_TITLE], "The title");
    assert_string_equal(rows.rows[0].fields[RF_F_SCRIPT_CONTENT], "the script");
    assert_string_equal(rows.rows[0].fields[RF_F_PRIORITY], "high");
    assert_string_equal(rows.rows[0].fields[RF_F_DURATION_SECONDS], "90");
    assert_null(rows.rows[0].fields[RF_F_VOICE_PREFERENCE]); /* ragged */
    assert_null(rows.rows[0].fields[RF_F_DESCRIPTION]);
    assert_int_equal(rows.rows[1].row_number, 7);
    assert_null(rows.rows[1].fields[RF_F_IDEA_TITLE]);
    assert_int_equal(rows.rows[2].row_number, 8);
    assert_string_equal(rows.rows[2].fields[RF_F_IDEA_TITLE], "t2");
    rf_rows_free(&rows);
    rf_sheet_values_clear(&v);
}

static void
test_letters_follow_the_sheet(void **state)
{
    /* no header: columns are the guide's letters of the sheet itself */
    const char *json = "{\"values\":[[\"T\",\"D\",\"A\",\"tone\",\"30\",\"tiktok\",\"S\"]]}";
    rf_sheet_values v;
    rf_rows rows;
    bool header = true;

    (void)state;
    values_from(json, "A2:J2", &v);
    assert_int_equal(rf_sheet_values_to_rows(&v, &rows, &header), RF_OK);
    assert_false(header);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.rows[0].row_number, 2);
    assert_string_equal(rows.rows[0].fields[RF_F_IDEA_TITLE], "T");
    assert_string_equal(rows.rows[0].fields[RF_F_SCRIPT_CONTENT], "S");
    rf_rows_free(&rows);
    rf_sheet_values_clear(&v);

    /* the same cells read from column C: C is target_audience, I is style */
    values_from(json, "C2:L2", &v);
    assert_int_equal(rf_sheet_values_to_rows(&v, &rows, &header), RF_OK);
    assert_true(blank(rows.rows[0].fields[RF_F_IDEA_TITLE]));
    assert_string_equal(rows.rows[0].fields[RF_F_TARGET_AUDIENCE], "T");
    assert_string_equal(rows.rows[0].fields[RF_F_STYLE_OVERRIDE], "S");
    rf_rows_free(&rows);
    rf_sheet_values_clear(&v);

    /* far right: nothing of the guide's columns */
    values_from(json, "AA2:AZ2", &v);
    assert_int_equal(rf_sheet_values_to_rows(&v, &rows, &header), RF_OK);
    for (int f = 0; f < RF_F_COUNT; f++) {
        assert_true(blank(rows.rows[0].fields[f]));
    }
    rf_rows_free(&rows);
    rf_sheet_values_clear(&v);
}

/* ---- /sheets/connect report ---- */

static json_t *
report_of(const char *json, const char *range, rf_vlevel level, int64_t max_rows)
{
    rf_sheet_values v;
    json_t *out = NULL;

    values_from(json, range, &v);
    assert_int_equal(rf_sheets_connect_report(&v, "1A2B", range, level, max_rows, "", &out), RF_OK);
    rf_sheet_values_clear(&v);
    return out;
}

static bool
has_string(json_t *arr, const char *s)
{
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x)
    {
        const char *t = json_is_string(x) ? json_string_value(x)
                                          : json_string_value(json_object_get(x, "message"));
        if (t != NULL && strstr(t, s) != NULL) {
            return true;
        }
    }
    return false;
}

static void
test_connect_report(void **state)
{
    const char *json =
        "{\"range\":\"Sheet1!A1:Z1000\",\"values\":[[\"idea_title\",\"description\","
        "\"target_audience\",\"tone\",\"duration_seconds\",\"platform_preferences\","
        "\"script_content\",\"voice_preference\",\"style_override\",\"priority\"],"
        "[\"How to improve productivity\",\"Learn about AI tools\",\"busy professionals\","
        "\"educational\",\"300\",\"youtube,tiktok\",\"Full script text...\",\"female\","
        "\"modern\",\"normal\"],[],[\"\",\"  \"],[\"Second\",\"\",\"\",\"\",\"\",\"\",\"S2\"],"
        "[\"No script\"]]}";
    json_t *r = report_of(json, "A1:Z1000", RF_VLEVEL_MODERATE, 10000);
    json_t *sample = json_object_get(r, "sample");
    json_t *val = json_object_get(r, "validation");
    json_t *row0 = json_array_get(json_object_get(sample, "preview"), 0);

    (void)state;
    assert_string_equal(json_string_value(json_object_get(r, "sheet_id")), "1A2B");
    assert_string_equal(json_string_value(json_object_get(r, "range")), "A1:Z1000");
    assert_string_equal(json_string_value(json_object_get(r, "resolved_range")), "Sheet1!A1:Z1000");
    assert_string_equal(json_string_value(json_object_get(r, "status")), "connected");
    assert_int_equal(json_array_size(json_object_get(sample, "columns")), 10);
    assert_string_equal(json_string_value(json_array_get(json_object_get(sample, "columns"), 2)),
                        "C");
    assert_true(json_is_true(json_object_get(sample, "header_detected")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(sample, "column_mapping"),
                                                          "script_content")),
                        "G");
    /* the seeds' clients read [title, script, image URL] */
    assert_string_equal(json_string_value(json_array_get(row0, 0)), "How to improve productivity");
    assert_string_equal(json_string_value(json_array_get(row0, 1)), "Full script text...");
    assert_string_equal(json_string_value(json_array_get(row0, 2)), "");
    assert_string_equal(json_string_value(json_array_get(row0, 3)), "Learn about AI tools");
    /* blank rows are not previewed */
    assert_int_equal(json_array_size(json_object_get(sample, "preview")), 3);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(sample, "preview_rows"), 1)),
                     5);
    assert_int_equal(json_integer_value(json_object_get(sample, "row_count")), 5);
    assert_int_equal(json_integer_value(json_object_get(sample, "empty_rows")), 2);
    assert_true(has_string(json_object_get(val, "warnings"), "2 empty rows will be skipped"));
    assert_false(has_string(json_object_get(val, "warnings"), "Large batch"));
    assert_true(json_is_false(json_object_get(val, "valid")));
    assert_true(has_string(json_object_get(val, "errors"), "row 6: script_content is required"));
    json_decref(r);

    /* permissive takes the row without a script */
    r = report_of(json, "A1:Z1000", RF_VLEVEL_PERMISSIVE, 10000);
    assert_true(json_is_true(json_object_get(json_object_get(r, "validation"), "valid")));
    json_decref(r);
}

static void
test_connect_warnings(void **state)
{
    /* 1,001 data rows, no header, one empty: large batch, by-position and
     * empty-row warnings; an open-ended range cut at max_rows is an error */
    size_t cap = 1100 * 40;
    char *json = malloc(cap);
    size_t n = 0;
    json_t *r, *val;

    (void)state;
    n += (size_t)snprintf(json + n, cap - n, "{\"values\":[");
    for (int i = 0; i < 1001; i++) {
        if (i == 500) {
            n += (size_t)snprintf(json + n, cap - n, "[],");
        } else {
            n +=
                (size_t)snprintf(json + n, cap - n, "[\"t%d\",\"\",\"\",\"\",\"\",\"\",\"s\"],", i);
        }
    }
    n += (size_t)snprintf(json + n, cap - n, "[\"last\",\"\",\"\",\"\",\"\",\"\",\"s\"]]}");
    r = report_of(json, "A2:J", RF_VLEVEL_MODERATE, 10000);
    val = json_object_get(r, "validation");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "sample"), "row_count")),
                     1002);
    assert_true(has_string(json_object_get(val, "warnings"), "1 empty row will be skipped"));
    assert_true(has_string(json_object_get(val, "warnings"),
                           "Large batch size may take extended processing time"));
    assert_true(has_string(json_object_get(val, "warnings"), "no header row found"));
    assert_true(json_is_true(json_object_get(val, "valid")));
    json_decref(r);

    {
        rf_sheet_values v;
        rf_a1_range rg = range_of("A2:J");
        rf_gerror e;
        assert_int_equal(rf_sheets_values_parse(json, n, &rg, 101, &v, &e), RF_OK);
        assert_true(v.truncated);
        assert_int_equal(
            rf_sheets_connect_report(&v, "1A2B", "A2:J", RF_VLEVEL_MODERATE, 100, "", &r), RF_OK);
        val = json_object_get(r, "validation");
        assert_true(json_is_false(json_object_get(val, "valid")));
        assert_true(has_string(json_object_get(val, "errors"), "more than 100 data rows"));
        json_decref(r);
        rf_sheet_values_clear(&v);
    }
    free(json);
}

static void
test_connect_parse(void **state)
{
    rf_sheets_connect_req req;
    rf_verr err;
    json_t *body;

    (void)state;
    body = json_pack("{s:s, s:s, s:s}", "sheet_id",
                     "https://docs.google.com/spreadsheets/d/1A2B-c_D/edit#gid=42", "range",
                     "'My Sheet'!A1:J50", "share_permissions", "read");
    assert_int_equal(rf_sheets_connect_parse(body, &req, &err), RF_OK);
    assert_string_equal(req.sheet_id, "1A2B-c_D");
    assert_string_equal(req.gid, "42");
    assert_string_equal(req.range, "'My Sheet'!A1:J50");
    assert_int_equal(req.level, RF_VLEVEL_MODERATE);
    json_decref(body);

    body = json_pack("{s:s, s:s}", "sheet_id", "bad id!", "range", "A1:B2");
    assert_int_equal(rf_sheets_connect_parse(body, &req, &err), RF_EINVAL);
    assert_string_equal(err.field, "sheet_id");
    json_decref(body);

    body = json_pack("{s:s, s:s}", "sheet_id", "abc", "range", "A1:");
    assert_int_equal(rf_sheets_connect_parse(body, &req, &err), RF_EINVAL);
    assert_string_equal(err.field, "range");
    json_decref(body);

    body = json_pack("{s:s, s:s}", "sheet_id", "abc", "validation_level", "lax");
    assert_int_equal(rf_sheets_connect_parse(body, &req, &err), RF_EINVAL);
    assert_string_equal(err.field, "validation_level");
    json_decref(body);

    body = json_pack("{s:s, s:s, s:s}", "sheet_id", "abc", "validation_level", "strict",
                     "share_permissions", "write");
    assert_int_equal(rf_sheets_connect_parse(body, &req, &err), RF_OK);
    assert_int_equal(req.level, RF_VLEVEL_STRICT);
    assert_true(req.want_write);
    json_decref(body);

    body = json_pack("{s:i}", "sheet_id", 5);
    assert_int_equal(rf_sheets_connect_parse(body, &req, &err), RF_EINVAL);
    assert_string_equal(err.field, "sheet_id");
    json_decref(body);
}

/* ---- service-account assertion ---- */

typedef struct keypair {
    char *priv;
    char *pub;
} keypair;

static char *
bio_text(BIO *b)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    return s;
}

static keypair
make_key(void)
{
    keypair k;
    EVP_PKEY *pkey = EVP_RSA_gen(2048);
    BIO *a = BIO_new(BIO_s_mem()), *b = BIO_new(BIO_s_mem());

    assert_non_null(pkey);
    assert_int_equal(PEM_write_bio_PrivateKey(a, pkey, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(PEM_write_bio_PUBKEY(b, pkey), 1);
    k.priv = bio_text(a);
    k.pub = bio_text(b);
    BIO_free(a);
    BIO_free(b);
    EVP_PKEY_free(pkey);
    return k;
}

static char *
key_json(const char *type, const char *email, const char *pem)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", type, "project_id", "proj",
                          "private_key_id", "kid123", "private_key", pem, "client_email", email,
                          "token_uri", "http://127.0.0.1:9/token");
    char *s = json_dumps(o, 0);
    json_decref(o);
    return s;
}

static void
test_assertion(void **state)
{
    keypair k = make_key();
    char *kj = key_json("service_account", "reader@proj.iam.gserviceaccount.com", k.priv);
    rf_gauth *g = NULL;
    char err[256] = "", *token = NULL;
    jwt_t *jwt = NULL;

    (void)state;
    assert_int_equal(rf_gauth_new(kj, strlen(kj), NULL, &g, err, sizeof(err)), RF_OK);
    assert_string_equal(rf_gauth_client_email(g), "reader@proj.iam.gserviceaccount.com");
    assert_int_equal(rf_gauth_assertion(g, RF_GAUTH_SCOPE_READ, 1700000000, &token), RF_OK);
    /* verified with the public key: RS256 signature and claims */
    assert_int_equal(jwt_decode(&jwt, token, (const unsigned char *)k.pub, (int)strlen(k.pub)), 0);
    assert_int_equal(jwt_get_alg(jwt), JWT_ALG_RS256);
    assert_string_equal(jwt_get_header(jwt, "typ"), "JWT");
    assert_string_equal(jwt_get_header(jwt, "kid"), "kid123");
    assert_string_equal(jwt_get_grant(jwt, "iss"), "reader@proj.iam.gserviceaccount.com");
    assert_string_equal(jwt_get_grant(jwt, "scope"), RF_GAUTH_SCOPE_READ);
    assert_string_equal(jwt_get_grant(jwt, "aud"), "http://127.0.0.1:9/token");
    assert_int_equal(jwt_get_grant_int(jwt, "iat"), 1700000000);
    assert_int_equal(jwt_get_grant_int(jwt, "exp"), 1700003600);
    jwt_free(jwt);
    jwt = NULL;
    /* a changed payload does not verify */
    {
        char *dot = strchr(token, '.');
        assert_non_null(dot);
        dot[3] = dot[3] == 'A' ? 'B' : 'A';
        assert_int_not_equal(
            jwt_decode(&jwt, token, (const unsigned char *)k.pub, (int)strlen(k.pub)), 0);
        jwt_free(jwt);
    }
    free(token);
    rf_gauth_free(&g);
    assert_null(g);
    free(kj);

    /* not a service-account key */
    kj = key_json("authorized_user", "x@y", k.priv);
    assert_int_equal(rf_gauth_new(kj, strlen(kj), NULL, &g, err, sizeof(err)), RF_EINVAL);
    assert_non_null(strstr(err, "authorized_user"));
    assert_null(g);
    free(kj);
    /* a key that cannot sign */
    kj = key_json("service_account", "x@y",
                  "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    assert_int_equal(rf_gauth_new(kj, strlen(kj), NULL, &g, err, sizeof(err)), RF_EINVAL);
    assert_non_null(strstr(err, "cannot be used to sign"));
    free(kj);
    assert_int_equal(rf_gauth_new("{", 1, NULL, &g, err, sizeof(err)), RF_EINVAL);
    free(k.priv);
    free(k.pub);
}

/* ---- ids ---- */

static void
test_sheet_ids(void **state)
{
    char id[RF_SHEETS_ID_MAX], gid[RF_SHEETS_GID_MAX];
    rf_gerror e;

    (void)state;
    assert_int_equal(rf_sheets_parse_id("1A2B3C4D5E6F7G8H9I0J", id, gid, &e), RF_OK);
    assert_string_equal(id, "1A2B3C4D5E6F7G8H9I0J");
    assert_string_equal(gid, "");
    assert_int_equal(
        rf_sheets_parse_id("https://docs.google.com/spreadsheets/d/abc_DEF-123/edit#gid=0", id, gid,
                           &e),
        RF_OK);
    assert_string_equal(id, "abc_DEF-123");
    assert_string_equal(gid, "0");
    assert_int_equal(rf_sheets_parse_id("abc/../x", id, gid, &e), RF_EINVAL);
    assert_string_equal(e.code, "invalid_sheet_id");
    assert_int_equal(rf_sheets_parse_id("", id, gid, &e), RF_EINVAL);
    assert_int_equal(rf_sheets_parse_id("a b", id, gid, &e), RF_EINVAL);
    assert_int_equal(rf_sheets_parse_id("abc%2F", id, NULL, &e), RF_EINVAL);
}

/* ---- write-back plan ---- */

static void
test_writeback_plan(void **state)
{
    rf_wb_row rows[] = {
        {3, "failed", NULL, "old error"},
        {2, "completed", "https://out/2.mp4", NULL},
        {4, "completed", "https://out/4.mp4", ""},
        {7, "failed", NULL, "voice synthesis failed"},
        {3, "completed", "https://out/3.mp4", NULL}, /* later entry for row 3 wins */
    };
    rf_wb_columns cols = {.state = 11, .url = 12, .error = 13}; /* K L M */
    json_t **bodies = NULL;
    size_t nb = 0, nr = 0;
    json_t *data, *vals;

    (void)state;
    assert_int_equal(rf_wb_plan("Sheet1", &cols, rows, 5, 100, &bodies, &nb, &nr), RF_OK);
    assert_int_equal(nb, 1);
    assert_int_equal(nr, 2);
    assert_string_equal(json_string_value(json_object_get(bodies[0], "valueInputOption")), "RAW");
    data = json_object_get(bodies[0], "data");
    assert_string_equal(json_string_value(json_object_get(json_array_get(data, 0), "range")),
                        "Sheet1!K2:M4");
    vals = json_object_get(json_array_get(data, 0), "values");
    assert_int_equal(json_array_size(vals), 3);
    assert_string_equal(json_string_value(json_array_get(json_array_get(vals, 1), 0)), "completed");
    assert_string_equal(json_string_value(json_array_get(json_array_get(vals, 1), 1)),
                        "https://out/3.mp4");
    assert_string_equal(json_string_value(json_array_get(json_array_get(vals, 1), 2)), "");
    assert_string_equal(json_string_value(json_object_get(json_array_get(data, 1), "range")),
                        "Sheet1!K7:M7");
    rf_wb_bodies_free(bodies, nb);

    /* columns apart (K and M, url not written), a quoted tab, one range per call */
    cols = (rf_wb_columns){.state = 11, .error = 13};
    assert_int_equal(rf_wb_plan("It's", &cols, rows, 5, 1, &bodies, &nb, &nr), RF_OK);
    assert_int_equal(nr, 4);
    assert_int_equal(nb, 4);
    {
        const char *want[] = {"'It''s'!K2:K4", "'It''s'!K7:K7", "'It''s'!M2:M4", "'It''s'!M7:M7"};
        for (size_t i = 0; i < 4; i++) {
            json_t *d = json_array_get(json_object_get(bodies[i], "data"), 0);
            assert_string_equal(json_string_value(json_object_get(d, "range")), want[i]);
        }
        vals = json_object_get(json_array_get(json_object_get(bodies[2], "data"), 0), "values");
        assert_string_equal(json_string_value(json_array_get(json_array_get(vals, 0), 0)), "");
    }
    rf_wb_bodies_free(bodies, nb);

    /* first tab: no prefix */
    assert_int_equal(rf_wb_plan("", &cols, rows, 1, 100, &bodies, &nb, &nr), RF_OK);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(bodies[0], "data"), 0), "range")),
                        "K3:K3");
    rf_wb_bodies_free(bodies, nb);
}

static void
test_writeback_columns(void **state)
{
    rf_wb_columns cols;
    rf_verr err;
    json_t *o;

    (void)state;
    o = json_pack("{s:s, s:s, s:s}", "state", "K", "url", "l", "error", "AA");
    assert_int_equal(rf_wb_columns_parse(o, "writeback.columns", &cols, &err), RF_OK);
    assert_int_equal(cols.state, 11);
    assert_int_equal(cols.url, 12);
    assert_int_equal(cols.error, 27);
    json_decref(o);
    o = json_pack("{s:s, s:s}", "state", "K", "url", "K");
    assert_int_equal(rf_wb_columns_parse(o, "writeback.columns", &cols, &err), RF_EINVAL);
    json_decref(o);
    o = json_pack("{s:s}", "video", "K");
    assert_int_equal(rf_wb_columns_parse(o, "writeback.columns", &cols, &err), RF_EINVAL);
    assert_string_equal(err.field, "writeback.columns.video");
    json_decref(o);
    o = json_pack("{s:s}", "state", "K1");
    assert_int_equal(rf_wb_columns_parse(o, "writeback.columns", &cols, &err), RF_EINVAL);
    json_decref(o);
    o = json_object();
    assert_int_equal(rf_wb_columns_parse(o, "writeback.columns", &cols, &err), RF_EINVAL);
    json_decref(o);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_mapping),     cmocka_unit_test(test_values_ragged),
        cmocka_unit_test(test_values_refused),    cmocka_unit_test(test_csv_crop),
        cmocka_unit_test(test_header_shuffled),   cmocka_unit_test(test_letters_follow_the_sheet),
        cmocka_unit_test(test_connect_report),    cmocka_unit_test(test_connect_warnings),
        cmocka_unit_test(test_connect_parse),     cmocka_unit_test(test_assertion),
        cmocka_unit_test(test_sheet_ids),         cmocka_unit_test(test_writeback_plan),
        cmocka_unit_test(test_writeback_columns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
