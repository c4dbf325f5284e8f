/* The HTTP API in process: civetweb on 127.0.0.1 (a free port), libcurl as
 * the client, a real SQLite file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "analytics.h"
#include "api.h"
#include "jobs.h"
#include "rf_util.h"
#include "testutil.h"

typedef struct fixture {
    tu_env env;
    rf_api *api;
    int port;
} fixture;

typedef struct response {
    long status;
    rf_bodybuf body;
    rf_bodybuf headers;
    json_t *json;
} response;

typedef struct chunk_src {
    const char *data;
    size_t len, pos;
} chunk_src;

static size_t
read_chunk(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    chunk_src *s = userdata;
    size_t n = size * nmemb;

    if (n > 4096) {
        n = 4096;
    }
    if (n > s->len - s->pos) {
        n = s->len - s->pos;
    }
    memcpy(ptr, s->data + s->pos, n);
    s->pos += n;
    return n;
}

/* One request; extra headers are a NULL-terminated list. chunked sends the
 * body without a Content-Length. */
static void
http(fixture *fx, const char *method, const char *path, const char *body, size_t body_len,
     const char *const *headers, bool chunked, response *r)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hl = NULL;
    char url[512];
    chunk_src src = {body, body_len, 0};
    json_error_t jerr;
    CURLcode rc;

    memset(r, 0, sizeof(*r));
    r->body.max = r->headers.max = SIZE_MAX;
    assert_non_null(h);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", fx->port, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, rf_bodybuf_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, rf_bodybuf_write);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r->headers);
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        hl = curl_slist_append(hl, headers[i]);
    }
    hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip */
    if (body != NULL && chunked) {
        hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, read_chunk);
        curl_easy_setopt(h, CURLOPT_READDATA, &src);
    } else if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        fail_msg("%s %s: %s", method, path, curl_easy_strerror(rc));
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    r->json = r->body.data != NULL ? json_loads(r->body.data, 0, &jerr) : NULL;
    if (r->json == NULL) {
        fail_msg("%s %s: body is not JSON: %s", method, path,
                 r->body.data != NULL ? r->body.data : "(empty)");
    }
}

static void
post(fixture *fx, const char *path, const char *body, response *r)
{
    http(fx, "POST", path, body, strlen(body), NULL, false, r);
}

static void
get(fixture *fx, const char *path, response *r)
{
    http(fx, "GET", path, NULL, 0, NULL, false, r);
}

static void
response_free(response *r)
{
    free(r->body.data);
    free(r->headers.data);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

/* Value of a response header (case-insensitive name), copied into out. */
static bool
header(const response *r, const char *name, char *out, size_t len)
{
    const char *p = r->headers.data;
    size_t n = strlen(name);

    while (p != NULL && *p != '\0') {
        const char *eol = strstr(p, "\r\n");
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            size_t vlen;
            while (*v == ' ') {
                v++;
            }
            vlen = eol != NULL ? (size_t)(eol - v) : strlen(v);
            snprintf(out, len, "%.*s", (int)vlen, v);
            return true;
        }
        p = eol != NULL ? eol + 2 : NULL;
    }
    return false;
}

static const char *
jstr(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (s == NULL) {
        fail_msg("no string '%s'", key);
    }
    return s;
}

static json_int_t
jint(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v)) {
        fail_msg("no integer '%s'", key);
    }
    return json_integer_value(v);
}

static const char *const JOB =
    "{\"title\":\"API job\",\"priority\":\"high\",\"processing_deadline_ms\":7200000,"
    "\"callback_url\":\"https://example.com/hook\",\"input_source\":{\"type\":\"rows\",\"rows\":["
    "{\"idea_title\":\"One\",\"script_content\":\"a\",\"platform_preferences\":\"youtube,tiktok\"},"
    "{\"idea_title\":\"Two\"},"
    "{\"idea_title\":\"Three\",\"script_content\":\"c\"}]},"
    "\"output\":{\"format\":\"mp4\",\"video_codec\":\"h264\",\"audio_codec\":\"aac\","
    "\"resolution\":\"720p\",\"output_bucket\":\"api-bucket\"},"
    "\"template\":{\"template_id\":\"tpl_abc123\",\"overrides\":{\"style\":\"modern\","
    "\"voice\":\"female\"}}}";

static int
setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));

    if (fx == NULL || tu_env_open(&fx->env) != 0) {
        return -1;
    }
    snprintf(fx->env.cfg.http_listen, sizeof(fx->env.cfg.http_listen), "127.0.0.1:0");
    fx->env.cfg.http_threads = 4;
    fx->env.cfg.max_body_bytes = 8192;
    fx->env.cfg.csv_fetch_timeout_ms = 3000;
    fx->env.cfg.auth_disabled = true; /* tokens: test_coord_auth and the integration tests */
    if (rf_api_start(fx->env.st, &fx->env.cfg, &fx->api) != RF_OK) {
        return -1;
    }
    fx->port = rf_api_port(fx->api);
    if (fx->port <= 0) {
        return -1;
    }
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture *fx = *state;
    rf_api_stop(&fx->api);
    tu_env_close(&fx->env);
    free(fx);
    return 0;
}

static void
test_create_v1(void **state)
{
    fixture *fx = *state;
    response r;
    char loc[256], ct[128], want[256];
    const json_t *out;

    post(fx, "/api/v1/bulk-jobs", JOB, &r);
    assert_int_equal(r.status, 201);
    assert_true(header(&r, "Content-Type", ct, sizeof(ct)));
    assert_string_equal(ct, "application/json");
    assert_memory_equal(jstr(r.json, "id"), "job_", 4);
    assert_string_equal(jstr(r.json, "title"), "API job");
    assert_string_equal(jstr(r.json, "state"), "pending");
    assert_string_equal(jstr(r.json, "priority"), "high");
    assert_true(json_number_value(json_object_get(r.json, "percent_complete")) == 0.0);
    assert_int_equal(jint(r.json, "items_total"), 3);
    assert_int_equal(jint(r.json, "items_completed"), 0);
    assert_int_equal(jint(r.json, "items_failed"), 1);
    assert_int_equal(jint(r.json, "items_pending"), 2);
    assert_int_equal(jint(r.json, "items_skipped"), 0);
    assert_int_equal(jint(r.json, "processing_deadline_ms"), 7200000);
    assert_string_equal(jstr(r.json, "callback_url"), "https://example.com/hook");
    assert_int_equal(strlen(jstr(r.json, "created_at")), 20); /* 2025-10-30T01:00:00Z */
    assert_true(jstr(r.json, "created_at")[19] == 'Z');
    assert_true(json_is_null(json_object_get(r.json, "started_at")));
    assert_true(json_is_null(json_object_get(r.json, "finished_at")));
    assert_true(json_is_null(json_object_get(r.json, "eta_ms")));
    assert_true(json_is_null(json_object_get(r.json, "error_code")));
    out = json_object_get(r.json, "output");
    assert_string_equal(jstr(out, "resolution"), "720p");
    assert_string_equal(jstr(out, "output_bucket"), "api-bucket");
    assert_string_equal(jstr(json_object_get(r.json, "template"), "template_id"), "tpl_abc123");
    assert_string_equal(
        jstr(json_object_get(json_object_get(r.json, "template"), "overrides"), "voice"), "female");
    assert_string_equal(jstr(json_object_get(r.json, "input_source"), "type"), "rows");
    assert_true(header(&r, "Location", loc, sizeof(loc)));
    snprintf(want, sizeof(want), "/api/v1/bulk-jobs/%s", jstr(r.json, "id"));
    assert_string_equal(loc, want);
    response_free(&r);
}

static void
test_both_path_styles_and_get(void **state)
{
    fixture *fx = *state;
    response r, g, e;
    char path[256], id[RF_ID_MAX];
    const json_t *data;

    post(fx, "/api/bulk-jobs", JOB, &r);
    assert_int_equal(r.status, 201);
    assert_true(json_is_true(json_object_get(r.json, "success")));
    data = json_object_get(r.json, "data");
    snprintf(id, sizeof(id), "%s", jstr(data, "id"));
    assert_int_equal(jint(data, "items_total"), 3);

    snprintf(path, sizeof(path), "/api/v1/bulk-jobs/%s", id);
    get(fx, path, &g);
    assert_int_equal(g.status, 200);
    assert_string_equal(jstr(g.json, "id"), id);
    assert_null(json_object_get(g.json, "success"));

    snprintf(path, sizeof(path), "/api/bulk-jobs/%s/", id); /* trailing slash */
    get(fx, path, &e);
    assert_int_equal(e.status, 200);
    assert_true(json_is_true(json_object_get(e.json, "success")));
    assert_string_equal(jstr(json_object_get(e.json, "data"), "id"), id);
    response_free(&r);
    response_free(&g);
    response_free(&e);
}

static void
test_progress_and_videos(void **state)
{
    fixture *fx = *state;
    response r, p, v1, v2, bad;
    char path[512], id[RF_ID_MAX];
    const json_t *items, *videos, *first;

    post(fx, "/api/v1/bulk-jobs", JOB, &r);
    snprintf(id, sizeof(id), "%s", jstr(r.json, "id"));

    snprintf(path, sizeof(path), "/api/bulk-jobs/%s/progress", id);
    get(fx, path, &p);
    assert_int_equal(p.status, 200);
    assert_string_equal(jstr(json_object_get(p.json, "data"), "job_id"), id);
    items = json_object_get(json_object_get(p.json, "data"), "items_status");
    assert_int_equal(jint(items, "total"), 3);
    assert_int_equal(jint(items, "failed"), 1);
    assert_int_equal(jint(items, "pending"), 2);
    assert_int_equal(jint(items, "skipped"), 0);
    assert_true(json_is_false(json_object_get(json_object_get(p.json, "data"), "rate_limited")));
    assert_non_null(json_object_get(json_object_get(p.json, "data"), "timing"));

    snprintf(path, sizeof(path), "/api/v1/bulk-jobs/%s/videos?page_size=2", id);
    get(fx, path, &v1);
    assert_int_equal(v1.status, 200);
    videos = json_object_get(v1.json, "videos");
    assert_int_equal(json_array_size(videos), 2);
    first = json_array_get(videos, 0);
    assert_int_equal(jint(first, "row_number"), 1);
    assert_string_equal(jstr(first, "title"), "One");
    assert_int_equal(json_array_size(json_object_get(first, "renditions")), 2);
    assert_int_equal(json_array_size(json_object_get(first, "artifacts")), 0);
    assert_string_equal(
        jstr(json_array_get(json_object_get(json_array_get(videos, 1), "errors"), 0), "error_code"),
        "validation_error");
    assert_true(json_is_string(json_object_get(v1.json, "next_page_token")));

    snprintf(path, sizeof(path), "/api/v1/bulk-jobs/%s/videos?page_size=2&page_token=%s", id,
             jstr(v1.json, "next_page_token"));
    get(fx, path, &v2);
    assert_int_equal(v2.status, 200);
    videos = json_object_get(v2.json, "videos");
    assert_int_equal(json_array_size(videos), 1);
    assert_int_equal(jint(json_array_get(videos, 0), "row_number"), 3);
    assert_true(json_is_null(json_object_get(v2.json, "next_page_token")));
    response_free(&v2);

    snprintf(path, sizeof(path), "/api/v1/bulk-jobs/%s/videos?state=failed", id);
    get(fx, path, &v2);
    assert_int_equal(json_array_size(json_object_get(v2.json, "videos")), 1);
    assert_int_equal(jint(json_array_get(json_object_get(v2.json, "videos"), 0), "row_number"), 2);

    snprintf(path, sizeof(path), "/api/v1/bulk-jobs/%s/videos?state=exploded", id);
    get(fx, path, &bad);
    assert_int_equal(bad.status, 400);
    assert_string_equal(jstr(json_object_get(bad.json, "detail"), "field"), "state");
    response_free(&r);
    response_free(&p);
    response_free(&v1);
    response_free(&v2);
    response_free(&bad);
}

static void
test_not_found_and_method(void **state)
{
    fixture *fx = *state;
    response a, b, c, d;
    char allow[64];

    get(fx, "/api/v1/bulk-jobs/job_doesnotexist", &a);
    assert_int_equal(a.status, 404);
    assert_string_equal(jstr(a.json, "error_code"), "not_found");
    assert_non_null(strstr(jstr(a.json, "error_message"), "job_doesnotexist"));

    get(fx, "/api/bulk-jobs/job_doesnotexist/progress", &b);
    assert_int_equal(b.status, 404);
    assert_true(json_is_false(json_object_get(b.json, "success")));
    assert_string_equal(jstr(json_object_get(b.json, "error"), "code"), "not_found");

    http(fx, "DELETE", "/api/v1/bulk-jobs", NULL, 0, NULL, false, &c);
    assert_int_equal(c.status, 405);
    assert_true(header(&c, "Allow", allow, sizeof(allow)));
    assert_string_equal(allow, "POST, GET");
    assert_string_equal(jstr(c.json, "error_code"), "method_not_allowed");

    get(fx, "/nothing/here", &d);
    assert_int_equal(d.status, 404);
    assert_string_equal(jstr(d.json, "error_code"), "not_found");
    response_free(&a);
    response_free(&b);
    response_free(&c);
    response_free(&d);
}

static void
test_validation_errors(void **state)
{
    fixture *fx = *state;
    response a, b, c;

    post(fx, "/api/v1/bulk-jobs", "{\"title\": \"x\", oops}", &a);
    assert_int_equal(a.status, 400);
    assert_string_equal(jstr(a.json, "error_code"), "validation_error");
    assert_non_null(strstr(jstr(a.json, "error_message"), "line 1"));
    assert_string_equal(jstr(json_object_get(a.json, "detail"), "field"), "body");

    post(fx, "/api/bulk-jobs",
         "{\"title\":\"t\",\"input_source\":{\"type\":\"rows\",\"rows\":[{}]},"
         "\"output\":{\"output_bucket\":\"b\",\"resolution\":\"8k\"}}",
         &b);
    assert_int_equal(b.status, 400);
    assert_true(json_is_false(json_object_get(b.json, "success")));
    assert_string_equal(jstr(json_object_get(b.json, "error"), "code"), "validation_error");
    assert_string_equal(jstr(json_object_get(json_object_get(b.json, "error"), "detail"), "field"),
                        "output.resolution");

    post(fx, "/api/v1/bulk-jobs",
         "{\"title\":\"t\",\"input_source\":{\"type\":\"sheet\",\"sheet_id\":\"1A2B\"},"
         "\"output\":{\"output_bucket\":\"b\"}}",
         &c);
    /* this fixture starts no Google Sheets client */
    assert_int_equal(c.status, 503);
    assert_string_equal(jstr(c.json, "error_code"), "sheets_unavailable");
    response_free(&a);
    response_free(&b);
    response_free(&c);
}

static void
test_body_too_large(void **state)
{
    fixture *fx = *state;
    size_t n = 64 * 1024;
    char *big = malloc(n + 1);
    response a, b;

    assert_non_null(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    http(fx, "POST", "/api/v1/bulk-jobs", big, n, NULL, false, &a);
    assert_int_equal(a.status, 413);
    assert_string_equal(jstr(a.json, "error_code"), "payload_too_large");
    http(fx, "POST", "/api/v1/bulk-jobs", big, n, NULL, true, &b); /* no Content-Length */
    assert_int_equal(b.status, 413);
    free(big);
    response_free(&a);
    response_free(&b);
}

static void
test_chunked_body_accepted(void **state)
{
    fixture *fx = *state;
    response a;

    http(fx, "POST", "/api/v1/bulk-jobs", JOB, strlen(JOB), NULL, true, &a);
    assert_int_equal(a.status, 201);
    assert_int_equal(jint(a.json, "items_total"), 3);
    response_free(&a);
}

static void
test_correlation_id(void **state)
{
    fixture *fx = *state;
    const char *const hdrs[] = {"X-Correlation-Id: trace-42.abc", NULL};
    const char *const bad[] = {"X-Correlation-Id: has space and \"quotes\"", NULL};
    response a, b, c;
    char cid[128];

    http(fx, "GET", "/healthz", NULL, 0, hdrs, false, &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(jstr(a.json, "status"), "ok");
    assert_true(header(&a, "X-Correlation-Id", cid, sizeof(cid)));
    assert_string_equal(cid, "trace-42.abc");

    get(fx, "/api/v1/bulk-jobs/job_x", &b);
    assert_true(header(&b, "X-Correlation-Id", cid, sizeof(cid)));
    assert_memory_equal(cid, "req_", 4);

    http(fx, "GET", "/healthz", NULL, 0, bad, false, &c);
    assert_true(header(&c, "X-Correlation-Id", cid, sizeof(cid)));
    assert_memory_equal(cid, "req_", 4); /* not echoed into a header unchecked */
    response_free(&a);
    response_free(&b);
    response_free(&c);
}

static void
write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void
test_csv_path_and_file_url(void **state)
{
    fixture *fx = *state;
    char csv[512], body[2048];
    response a, b, c, d;

    snprintf(csv, sizeof(csv), "%s/sheet.csv", fx->env.dir);
    write_text(csv, "idea_title,script_content,platform_preferences\r\n"
                    "First,\"Hello, world\",youtube\r\n"
                    ",,\r\n"
                    "Second,,tiktok\r\n"
                    ",,\r\n"); /* the trailing empty record is dropped */
    snprintf(body, sizeof(body),
             "{\"title\":\"CSV\",\"input_source\":{\"type\":\"csv\",\"path\":\"%s\"},"
             "\"output\":{\"output_bucket\":\"csv\"}}",
             csv);
    post(fx, "/api/v1/bulk-jobs", body, &a);
    assert_int_equal(a.status, 201);
    assert_int_equal(jint(a.json, "items_total"), 3);
    assert_int_equal(jint(a.json, "items_failed"), 1);
    assert_int_equal(jint(a.json, "items_skipped"), 1);
    assert_string_equal(jstr(json_object_get(a.json, "input_source"), "path"), csv);

    snprintf(body, sizeof(body),
             "{\"title\":\"CSV\",\"input_source\":{\"type\":\"csv\",\"url\":\"file://%s\"},"
             "\"output\":{\"output_bucket\":\"csv\"}}",
             csv);
    post(fx, "/api/v1/bulk-jobs", body, &b);
    assert_int_equal(b.status, 201);
    assert_int_equal(jint(b.json, "items_total"), 3);

    snprintf(body, sizeof(body),
             "{\"title\":\"CSV\",\"input_source\":{\"type\":\"csv\",\"path\":\"%s/missing.csv\"},"
             "\"output\":{\"output_bucket\":\"csv\"}}",
             fx->env.dir);
    post(fx, "/api/v1/bulk-jobs", body, &c);
    assert_int_equal(c.status, 400);
    assert_string_equal(jstr(json_object_get(c.json, "detail"), "field"), "input_source.path");
    assert_non_null(strstr(jstr(c.json, "error_message"), "No such file"));

    /* port 1 on loopback: nothing listens, the fetch fails fast */
    post(fx, "/api/v1/bulk-jobs",
         "{\"title\":\"CSV\",\"input_source\":{\"type\":\"csv\","
         "\"url\":\"http://127.0.0.1:1/sheet.csv\"},\"output\":{\"output_bucket\":\"csv\"}}",
         &d);
    assert_int_equal(d.status, 400);
    assert_string_equal(jstr(json_object_get(d.json, "detail"), "field"), "input_source.url");
    assert_string_equal(jstr(json_object_get(d.json, "detail"), "reason"), "unreachable");
    response_free(&a);
    response_free(&b);
    response_free(&c);
    response_free(&d);
}

/* Every route of the table is in the OpenAPI document and every operation
 * of the document is a route; the served document is the embedded one. */
static void
test_openapi_matches_routes(void **state)
{
    fixture *fx = *state;
    size_t len = 0;
    const char *text = rf_api_openapi(&len);
    json_t *doc = json_loadb(text, len, 0, NULL);
    const json_t *paths, *ops;
    const char *key;
    size_t n_ops = 0, n_routes = rf_api_route_count();
    response r;

    assert_non_null(doc);
    assert_int_equal(len, strlen(text));
    assert_string_equal(jstr(doc, "openapi"), "3.0.3");
    paths = json_object_get(doc, "paths");
    assert_true(json_is_object(paths));
    for (size_t i = 0; i < n_routes; i++) {
        const char *method, *path;
        bool api_scoped;
        char want[256], lower[16];
        bool found = false;
        assert_true(rf_api_route_at(i, &method, &path, &api_scoped));
        json_object_foreach((json_t *)paths, key, ops)
        {
            /* "/bulk-jobs/{job_id}/pause" -> "/bulk-jobs/{}/pause" */
            char norm[256];
            size_t o = 0;
            for (const char *p = key; *p != '\0' && o + 3 < sizeof(norm); p++) {
                if (*p == '{') {
                    norm[o++] = '{';
                    norm[o++] = '}';
                    while (*p != '\0' && *p != '}') {
                        p++;
                    }
                } else {
                    norm[o++] = *p;
                }
            }
            norm[o] = '\0';
            snprintf(want, sizeof(want), "%s", path);
            if (strcmp(norm, want) != 0) {
                continue;
            }
            for (size_t c = 0; c <= strlen(method); c++) {
                lower[c] = (char)tolower((unsigned char)method[c]);
            }
            found = json_object_get(ops, lower) != NULL;
            /* the root-level route says so in its own servers entry */
            if (found && !api_scoped) {
                const json_t *servers = json_object_get(ops, "servers");
                assert_true(json_is_array(servers));
                assert_string_equal(jstr(json_array_get(servers, 0), "url"), "/");
            }
        }
        if (!found) {
            fail_msg("route %s %s is not in openapi.json", method, path);
        }
    }
    json_object_foreach((json_t *)paths, key, ops)
    {
        const char *m;
        const json_t *op;
        json_object_foreach((json_t *)ops, m, op)
        {
            if (strcmp(m, "servers") != 0 && strcmp(m, "parameters") != 0) {
                n_ops++;
            }
        }
    }
    if (n_ops != n_routes) {
        fail_msg("openapi.json has %zu operations, the route table %zu", n_ops, n_routes);
    }
    get(fx, "/api/v1/openapi.json", &r);
    assert_int_equal(r.status, 200);
    assert_true(json_equal(r.json, doc));
    response_free(&r);
    json_decref(doc);
}

static void
test_list_http(void **state)
{
    fixture *fx = *state;
    response a, b, c, bad;
    const char *first;

    post(fx, "/api/v1/bulk-jobs", JOB, &a);
    response_free(&a);
    /* created_at has millisecond resolution: jobs created in the same
     * millisecond have no defined order, so make these two distinct. */
    usleep(5000);
    post(fx, "/api/v1/bulk-jobs", JOB, &a);
    get(fx, "/api/v1/bulk-jobs?page_size=1&sort=created_at&order=desc", &b);
    assert_int_equal(b.status, 200);
    assert_int_equal(json_array_size(json_object_get(b.json, "jobs")), 1);
    first = jstr(json_array_get(json_object_get(b.json, "jobs"), 0), "id");
    assert_string_equal(first, jstr(a.json, "id")); /* newest first */
    assert_true(jint(b.json, "total_count") >= 2);
    assert_true(json_is_string(json_object_get(b.json, "next_page_token")));
    get(fx, "/api/bulk-jobs?state=pending&sort=percent_complete&order=asc", &c);
    assert_int_equal(c.status, 200);
    assert_true(json_is_true(json_object_get(c.json, "success")));
    assert_true(json_array_size(json_object_get(json_object_get(c.json, "data"), "jobs")) >= 2);
    get(fx, "/api/v1/bulk-jobs?sort=title", &bad);
    assert_int_equal(bad.status, 400);
    assert_string_equal(jstr(json_object_get(bad.json, "detail"), "field"), "sort");
    response_free(&bad);
    get(fx, "/api/v1/bulk-jobs?page_size=0", &bad);
    assert_int_equal(bad.status, 400);
    response_free(&bad);
    get(fx, "/api/v1/bulk-jobs?state=lost", &bad);
    assert_int_equal(bad.status, 400);
    response_free(&bad);
    get(fx, "/api/v1/bulk-jobs?page_token=Zm9v", &bad);
    assert_int_equal(bad.status, 400);
    assert_string_equal(jstr(json_object_get(bad.json, "detail"), "field"), "page_token");
    response_free(&bad);
    response_free(&a);
    response_free(&b);
    response_free(&c);
}

static void
test_idempotency_http(void **state)
{
    fixture *fx = *state;
    const char *const key1[] = {"Idempotency-Key: api-test-key-1", NULL};
    const char *const key2[] = {"Idempotency-Key: api-test-key-2", NULL};
    const char *const key_bad[] = {"Idempotency-Key: caf\xc3\xa9", NULL};
    char other[2048], h[64];
    response a, b, c, d, e, f;

    http(fx, "POST", "/api/v1/bulk-jobs", JOB, strlen(JOB), key1, false, &a);
    assert_int_equal(a.status, 201);
    assert_false(header(&a, "Idempotent-Replayed", h, sizeof(h)));
    http(fx, "POST", "/api/v1/bulk-jobs", JOB, strlen(JOB), key1, false, &b);
    assert_int_equal(b.status, 201);
    assert_string_equal(b.body.data, a.body.data); /* the same body, the same job */
    assert_true(header(&b, "Idempotent-Replayed", h, sizeof(h)));
    assert_string_equal(h, "true");
    snprintf(other, sizeof(other), "%s", JOB);
    memcpy(strstr(other, "API job"), "API jab", 7);
    http(fx, "POST", "/api/v1/bulk-jobs", other, strlen(other), key1, false, &c);
    assert_int_equal(c.status, 409);
    assert_string_equal(jstr(c.json, "error_code"), "idempotency_conflict");
    /* a request refused by validation is not stored: the key stays usable */
    http(fx, "POST", "/api/v1/bulk-jobs", "{\"title\":\"\"}", 12, key2, false, &d);
    assert_int_equal(d.status, 400);
    http(fx, "POST", "/api/v1/bulk-jobs", other, strlen(other), key2, false, &e);
    assert_int_equal(e.status, 201);
    assert_string_not_equal(jstr(e.json, "id"), jstr(a.json, "id"));
    http(fx, "POST", "/api/v1/bulk-jobs", JOB, strlen(JOB), key_bad, false, &f);
    assert_int_equal(f.status, 400);
    assert_string_equal(jstr(json_object_get(f.json, "detail"), "field"), "Idempotency-Key");
    response_free(&a);
    response_free(&b);
    response_free(&c);
    response_free(&d);
    response_free(&e);
    response_free(&f);
}

static void
test_dry_run_http(void **state)
{
    fixture *fx = *state;
    response before, r, after;
    const json_t *rep, *est;

    get(fx, "/api/v1/bulk-jobs", &before);
    post(fx, "/api/v1/bulk-jobs?dry_run=true", JOB, &r);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "dry_run")));
    assert_true(json_is_false(json_object_get(r.json, "valid"))); /* row 2 has no script */
    rep = json_object_get(r.json, "validation_report");
    assert_int_equal(jint(rep, "rows_total"), 3);
    assert_int_equal(jint(rep, "valid_rows"), 2);
    assert_int_equal(jint(rep, "invalid_rows"), 1);
    assert_int_equal(jint(json_array_get(json_object_get(rep, "errors"), 0), "row_number"), 2);
    assert_non_null(strstr(jstr(json_array_get(json_object_get(rep, "errors"), 0), "message"),
                           "script_content"));
    assert_int_equal(jint(r.json, "items_total"), 3);
    assert_int_equal(jint(r.json, "renditions_total"), 3); /* youtube+tiktok, youtube */
    est = json_object_get(r.json, "estimate");
    /* 3 renditions of 300 s at 720p: 15 output minutes x 0.01 + CPU 0.5 x 15 min x 0.002 */
    assert_true(fabs(json_number_value(json_object_get(est, "cost")) - (0.15 + 0.015)) < 1e-6);
    assert_int_equal(jint(est, "processing_time_ms"), 450000); /* 900 s x 0.5, one slot */
    get(fx, "/api/v1/bulk-jobs", &after);
    assert_int_equal(jint(after.json, "total_count"), jint(before.json, "total_count"));
    response_free(&before);
    response_free(&r);
    response_free(&after);
}

static void
test_templates_http(void **state)
{
    fixture *fx = *state;
    const char *tpl = "{\"template_id\":\"my_brand_template\",\"name\":\"My Brand Style\","
                      "\"description\":\"Custom template for brand videos\",\"settings\":{"
                      "\"style\":{\"colors\":[\"#FF0000\",\"#00FF00\",\"#0000FF\"],"
                      "\"font_family\":\"Arial\",\"logo_position\":\"bottom_right\"},"
                      "\"audio\":{\"background_music\":\"brand_track.mp3\","
                      "\"voice_settings\":{\"speed\":1.25,\"pitch\":-2.0}}}}";
    const char *job = "{\"title\":\"Branded\",\"input_source\":{\"type\":\"rows\",\"rows\":["
                      "{\"idea_title\":\"One\",\"script_content\":\"a\",\"duration_seconds\":2}]},"
                      "\"output\":{\"output_bucket\":\"tb\",\"resolution\":\"720p\"},"
                      "\"template\":{\"template_id\":\"my_brand_template\"}}";
    response a, b, c, d, e, f, g;
    rf_hello hello;
    rf_unit u;
    rf_outcome oc;
    bool leased = false;
    bool mine = false;
    size_t i;
    json_t *t;

    post(fx, "/api/v1/templates", tpl, &a);
    assert_int_equal(a.status, 201);
    assert_string_equal(jstr(a.json, "template_id"), "my_brand_template");
    assert_true(json_is_false(json_object_get(a.json, "built_in")));
    post(fx, "/api/v1/templates", tpl, &b);
    assert_int_equal(b.status, 409);
    get(fx, "/api/v1/templates", &c);
    assert_int_equal(c.status, 200);
    json_array_foreach(json_object_get(c.json, "templates"), i, t)
    {
        mine = mine || strcmp(jstr(t, "template_id"), "my_brand_template") == 0;
    }
    assert_true(mine);
    assert_true(json_array_size(json_object_get(c.json, "templates")) >= 6);
    get(fx, "/api/templates/tpl_promotional", &d);
    assert_int_equal(d.status, 200);
    assert_true(json_is_true(json_object_get(json_object_get(d.json, "data"), "built_in")));
    post(fx, "/api/v1/templates",
         "{\"template_id\":\"x\",\"name\":\"X\",\"settings\":{\"style\":{\"colors\":[\"red\"]}}}",
         &e);
    assert_int_equal(e.status, 400);
    assert_string_equal(jstr(json_object_get(e.json, "detail"), "field"), "settings.style.colors");
    post(fx, "/api/v1/bulk-jobs", job, &f);
    assert_int_equal(f.status, 201);
    /* the unit carries the custom template */
    memset(&hello, 0, sizeof(hello));
    snprintf(hello.agent_id, sizeof(hello.agent_id), "tpl-agent");
    snprintf(hello.hostname, sizeof(hello.hostname), "h");
    hello.slots = 1;
    assert_int_equal(rf_jobs_agent_hello(fx->env.st, &hello, rf_now_ms()), RF_OK);
    for (int k = 0; k < 50; k++) {
        assert_int_equal(
            rf_jobs_lease(fx->env.st, &fx->env.cfg, "tpl-agent", rf_now_ms(), &u, &leased, &oc),
            RF_OK);
        if (!leased || strcmp(u.job_id, jstr(f.json, "id")) == 0) {
            break;
        }
        free(u.title);
        free(u.description);
        free(u.script);
    }
    assert_true(leased);
    assert_string_equal(u.job_id, jstr(f.json, "id"));
    assert_string_equal(u.template_id, "my_brand_template");
    assert_int_equal(u.n_colors, 3);
    assert_string_equal(u.colors[0], "#FF0000");
    assert_string_equal(u.font_family, "Arial");
    assert_true(fabs(u.voice_speed - 1.25) < 1e-9);
    assert_true(fabs(u.voice_pitch + 2.0) < 1e-9);
    free(u.title);
    free(u.description);
    free(u.script);
    post(fx, "/api/v1/bulk-jobs",
         "{\"title\":\"t\",\"input_source\":{\"type\":\"rows\",\"rows\":[{\"idea_title\":\"a\","
         "\"script_content\":\"b\"}]},\"output\":{\"output_bucket\":\"b\"},"
         "\"template\":{\"template_id\":\"not_mine\"}}",
         &g);
    assert_int_equal(g.status, 400);
    assert_string_equal(jstr(json_object_get(g.json, "detail"), "field"), "template.template_id");
    response_free(&a);
    response_free(&b);
    response_free(&c);
    response_free(&d);
    response_free(&e);
    response_free(&f);
    response_free(&g);
}

static void
test_analytics_http(void **state)
{
    fixture *fx = *state;
    response r, bad;
    char path[256], today[16];
    time_t now = time(NULL);
    struct tm tm;
    const json_t *groups;

    gmtime_r(&now, &tm);
    strftime(today, sizeof(today), "%Y-%m-%d", &tm);
    snprintf(path, sizeof(path),
             "/api/v1/bulk-jobs/analytics?start_date=%s&end_date=%s&group_by=template_id", today,
             today);
    get(fx, path, &r);
    assert_int_equal(r.status, 200);
    assert_true(jint(r.json, "total_jobs") >= 1); /* jobs of earlier tests, same store */
    assert_true(
        json_is_object(json_object_get(json_object_get(r.json, "cost_summary"), "by_template")));
    groups = json_object_get(r.json, "groups");
    assert_true(json_array_size(groups) >= 1);
    assert_string_equal(jstr(r.json, "start_date"), today);
    get(fx, "/api/v1/bulk-jobs/analytics?start_date=2025-02-30", &bad);
    assert_int_equal(bad.status, 400);
    assert_string_equal(jstr(json_object_get(bad.json, "detail"), "field"), "start_date");
    response_free(&bad);
    get(fx, "/api/v1/bulk-jobs/analytics?start_date=2025-10-31&end_date=2025-10-01", &bad);
    assert_int_equal(bad.status, 400);
    response_free(&bad);
    get(fx, "/api/v1/bulk-jobs/analytics?group_by=state", &bad);
    assert_int_equal(bad.status, 400);
    response_free(&bad);
    response_free(&r);
}

/* The cost model on known numbers: one completed 720p unit of 2 s rendered
 * in 30 s on CPU, one 4k unit of 60 s rendered in 60 s on NVENC. */
static void
test_cost_model(void **state)
{
    fixture *fx = *state;
    const rf_coord_config *cfg = &fx->env.cfg;

    assert_true(fabs(rf_cost_output(cfg, "720p", 120000) - 0.02) < 1e-9);
    assert_true(fabs(rf_cost_output(cfg, "4k", 60000) - 0.06) < 1e-9);
    assert_true(fabs(rf_cost_output(cfg, "1080p", 30000) - 0.01) < 1e-9);
    assert_true(fabs(rf_cost_render(cfg, 60000, 30000) - (0.01 + 0.001)) < 1e-9);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_v1),
        cmocka_unit_test(test_both_path_styles_and_get),
        cmocka_unit_test(test_progress_and_videos),
        cmocka_unit_test(test_not_found_and_method),
        cmocka_unit_test(test_validation_errors),
        cmocka_unit_test(test_body_too_large),
        cmocka_unit_test(test_chunked_body_accepted),
        cmocka_unit_test(test_correlation_id),
        cmocka_unit_test(test_csv_path_and_file_url),
        cmocka_unit_test(test_openapi_matches_routes),
        cmocka_unit_test(test_list_http),
        cmocka_unit_test(test_idempotency_http),
        cmocka_unit_test(test_dry_run_http),
        cmocka_unit_test(test_templates_http),
        cmocka_unit_test(test_analytics_http),
        cmocka_unit_test(test_cost_model),
    };
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
