/* HTTP handlers and routing. */
#include "api.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <civetweb.h>
#include <jansson.h>

#include "jobs.h"
#include "request.h"
#include "rf_log.h"
#include "rf_util.h"
#include "sources.h"

#define JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(6))
#define PAGE_SIZE_DEFAULT 50
#define PAGE_SIZE_MAX 100
#define DRAIN_MAX (16u << 20) /* bytes of an oversized body read and dropped */
#define MAX_PARAMS 2

struct rf_api {
    struct mg_context *ctx;
    rf_store *st;
    const rf_coord_config *cfg;
};

typedef enum api_style { STYLE_V1, STYLE_WRAPPED } api_style;
typedef enum route_scope { SCOPE_API, SCOPE_ROOT } route_scope;

typedef struct req {
    rf_api *api;
    struct mg_connection *conn;
    const struct mg_request_info *ri;
    api_style style;
    char cid[80];
    char params[MAX_PARAMS][128];
    int n_params;
} req;

typedef int (*route_fn)(req *r);

typedef struct route {
    const char *method;
    route_scope scope;
    const char *pattern; /* "{}" matches one non-empty path segment */
    route_fn fn;
} route;

static int h_create(req *r);
static int h_get(req *r);
static int h_progress(req *r);
static int h_videos(req *r);
static int h_health(req *r);

/* The route table: later issues add rows (list, pause, resume, cancel, retry,
 * templates, sheets/connect, ws). */
static const route routes[] = {
    {"POST", SCOPE_API, "/bulk-jobs", h_create},
    {"GET", SCOPE_API, "/bulk-jobs/{}", h_get},
    {"GET", SCOPE_API, "/bulk-jobs/{}/progress", h_progress},
    {"GET", SCOPE_API, "/bulk-jobs/{}/videos", h_videos},
    {"GET", SCOPE_ROOT, "/healthz", h_health},
};

/* ---- responses ---- */

static const char *
status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

/* Sends a JSON body; steals body. extra: more header lines ending in CRLF,
 * or NULL. Returns status (civetweb's "handled" code). */
static int
send_json(req *r, int status, json_t *body, const char *extra)
{
    char *text = body != NULL ? json_dumps(body, JSON_FLAGS) : NULL;
    static const char fallback[] =
        "{\"error_code\":\"internal_error\",\"error_message\":\"out of memory\",\"detail\":null}";
    const char *out = text != NULL ? text : fallback;
    size_t len = strlen(out);

    json_decref(body);
    if (text == NULL) {
        status = 500;
    }
    mg_printf(r->conn,
              "HTTP/1.1 %d %s\r\n"
              "Content-Type: application/json\r\n"
              "Content-Length: %zu\r\n"
              "X-Correlation-Id: %s\r\n"
              "Cache-Control: no-store\r\n"
              "%s"
              "Connection: close\r\n\r\n",
              status, status_text(status), len, r->cid, extra != NULL ? extra : "");
    mg_write(r->conn, out, len);
    free(text);
    return status;
}

static int
reply_ok(req *r, int status, json_t *data, const char *extra)
{
    if (data == NULL) {
        return send_json(r, 500, NULL, NULL);
    }
    if (r->style == STYLE_WRAPPED) {
        data = json_pack("{s:b, s:o}", "success", 1, "data", data);
    }
    return send_json(r, status, data, extra);
}

/* Steals detail (may be NULL: JSON null). */
static int
reply_error(req *r, int status, const char *code, const char *message, json_t *detail,
            const char *extra)
{
    json_t *body;

    if (detail == NULL) {
        detail = json_null();
    }
    if (r->style == STYLE_WRAPPED) {
        body = json_pack("{s:b, s:{s:s, s:s, s:o}}", "success", 0, "error", "code", code, "message",
                         message, "detail", detail);
    } else {
        body = json_pack("{s:s, s:s, s:o}", "error_code", code, "error_message", message, "detail",
                         detail);
    }
    return send_json(r, status, body, extra);
}

static int
reply_verr(req *r, int status, const rf_verr *e)
{
    return reply_error(r, status, "validation_error", e->message,
                       json_pack("{s:s, s:s}", "field", e->field, "reason", e->reason), NULL);
}

static int
reply_internal(req *r, rf_err rv)
{
    char msg[128];

    snprintf(msg, sizeof(msg), "the request could not be completed: %s", rf_strerror(rv));
    return reply_error(r, 500, "internal_error", msg, NULL, NULL);
}

static int
reply_not_found(req *r, const char *what)
{
    char msg[256];

    snprintf(msg, sizeof(msg), "%s was not found", what);
    return reply_error(r, 404, "not_found", msg, NULL, NULL);
}

/* ---- JSON views ---- */

static json_t *
time_json(int64_t ms)
{
    char buf[40];

    if (ms <= 0) {
        return json_null();
    }
    rf_time_rfc3339(ms, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *
str_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

static json_t *
parsed_or(const char *text, json_t *fallback)
{
    json_t *v = text != NULL ? json_loads(text, 0, NULL) : NULL;

    if (v == NULL) {
        return fallback;
    }
    json_decref(fallback);
    return v;
}

static json_t *
job_json(const rf_job_view *v)
{
    const rf_job_rec *j = &v->job;
    bool failed = strcmp(j->state, "failed") == 0;

    return json_pack(
        "{s:s, s:s, s:s, s:s, s:f, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o,"
        " s:{s:s, s:s, s:s, s:s, s:s}, s:{s:s, s:o}, s:o, s:o, s:o, s:o, s:b}",
        "id", j->id, "title", j->title, "state", j->state, "priority",
        rf_priority_name(j->priority), "percent_complete", v->percent_complete, "items_total",
        (json_int_t)v->items.total, "items_completed", (json_int_t)v->items.completed,
        "items_failed", (json_int_t)v->items.failed, "items_pending",
        (json_int_t)(v->items.pending + v->items.processing), "items_skipped",
        (json_int_t)v->items.skipped, "created_at", time_json(j->created_at), "updated_at",
        time_json(j->updated_at), "started_at", time_json(j->started_at), "finished_at",
        time_json(j->finished_at), "processing_deadline_ms",
        j->processing_deadline_ms > 0 ? json_integer(j->processing_deadline_ms) : json_null(),
        "callback_url", str_or_null(j->callback_url), "output", "format", j->format, "video_codec",
        j->video_codec, "audio_codec", j->audio_codec, "resolution", j->resolution, "output_bucket",
        j->output_bucket, "template", "template_id", j->template_id, "overrides",
        parsed_or(j->overrides_json, json_object()), "input_source",
        parsed_or(j->input_json, json_object()), "eta_ms",
        v->eta_ms >= 0 ? json_integer(v->eta_ms) : json_null(), "error_code",
        failed ? str_or_null(j->error_code) : json_null(), "error_message",
        failed ? str_or_null(j->error_message) : json_null(), "rate_limited", 0);
}

static json_t *
progress_json(const rf_job_view *v)
{
    return json_pack(
        "{s:s, s:s, s:f, s:{s:I, s:I, s:I, s:I, s:I}, s:{s:o, s:I, s:o}, s:b}", "job_id", v->job.id,
        "state", v->job.state, "percent_complete", v->percent_complete, "items_status", "total",
        (json_int_t)v->items.total, "completed", (json_int_t)v->items.completed, "failed",
        (json_int_t)v->items.failed, "pending",
        (json_int_t)(v->items.pending + v->items.processing), "skipped",
        (json_int_t)v->items.skipped, "timing", "started_at", time_json(v->job.started_at),
        "processing_time_ms", (json_int_t)v->processing_time_ms, "eta_ms",
        v->eta_ms >= 0 ? json_integer(v->eta_ms) : json_null(), "rate_limited", 0);
}

static json_t *
video_json(const rf_video_view *v)
{
    json_t *errors = json_array(), *artifacts = json_array(), *renditions = json_array();
    json_t *out;

    if (errors == NULL || artifacts == NULL || renditions == NULL) {
        json_decref(errors);
        json_decref(artifacts);
        json_decref(renditions);
        return NULL;
    }
    if (v->item.error_code[0] != '\0' && strcmp(v->item.state, "failed") == 0) {
        json_array_append_new(errors, json_pack("{s:s, s:s}", "error_code", v->item.error_code,
                                                "error_message", v->item.error_message));
    }
    for (size_t i = 0; i < v->n_units; i++) {
        const rf_unit_rec *u = &v->units[i];
        if (strcmp(u->state, "completed") == 0) {
            char url[RF_PATH_MAX + 16];
            if (strstr(u->output_path, "://") != NULL) {
                snprintf(url, sizeof(url), "%s", u->output_path);
            } else {
                snprintf(url, sizeof(url), "file://%s", u->output_path);
            }
            json_array_append_new(
                artifacts,
                json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:I, s:I, s:s, s:s}", "type", "video",
                          "rendition", u->rendition, "url", url, "path", u->output_path, "width",
                          (int)u->width, "height", (int)u->height, "duration_ms",
                          (json_int_t)u->media_duration_ms, "size_bytes", (json_int_t)u->size_bytes,
                          "sha256", u->sha256, "encoder", u->encoder));
        }
        json_array_append_new(
            renditions, json_pack("{s:s, s:s, s:i, s:i, s:I, s:I, s:i, s:o}", "rendition",
                                  u->rendition, "state", u->state, "width", (int)u->width, "height",
                                  (int)u->height, "frames_done", (json_int_t)u->frames_done,
                                  "frames_total", (json_int_t)u->frames_total, "attempts",
                                  (int)u->attempts, "agent_id", str_or_null(u->agent_id)));
    }
    out = json_pack("{s:s, s:i, s:s, s:s, s:o, s:o, s:o}", "id", v->item.id, "row_number",
                    (int)v->item.row_number, "title", v->item.title, "state", v->item.state,
                    "errors", errors, "artifacts", artifacts, "renditions", renditions);
    return out;
}

/* ---- request helpers ---- */

/* Reads and drops up to DRAIN_MAX bytes of a body we refuse, so that a client
 * still sending it gets to read our answer instead of a reset. */
static void
drain_body(req *r)
{
    char scratch[16384];
    size_t total = 0;
    int n;

    while (total < DRAIN_MAX && (n = mg_read(r->conn, scratch, sizeof(scratch))) > 0) {
        total += (size_t)n;
    }
}

static bool
expects_continue(req *r)
{
    const char *e = mg_get_header(r->conn, "Expect");
    return e != NULL && strcasecmp(e, "100-continue") == 0;
}

static int
reply_too_big(req *r)
{
    char msg[128];

    if (!expects_continue(r)) {
        drain_body(r);
    }
    snprintf(msg, sizeof(msg), "the request body is larger than %lld bytes",
             (long long)r->api->cfg->max_body_bytes);
    return reply_error(
        r, 413, "payload_too_large", msg,
        json_pack("{s:I}", "max_body_bytes", (json_int_t)r->api->cfg->max_body_bytes), NULL);
}

/* Reads the whole body, refusing more than max_body_bytes: up front from
 * Content-Length, or while reading a body without one (chunked). Returns 0
 * with *out (malloc'd, NUL-terminated) or the status already sent. */
static int
read_body(req *r, char **out, size_t *out_len)
{
    size_t max = (size_t)r->api->cfg->max_body_bytes;
    long long cl = r->ri->content_length;
    size_t cap, len = 0;
    char *buf;

    *out = NULL;
    *out_len = 0;
    if (cl > (long long)max) {
        return reply_too_big(r);
    }
    cap = cl >= 0 ? (size_t)cl + 1 : 65536;
    buf = malloc(cap);
    if (buf == NULL) {
        return reply_internal(r, RF_ENOMEM);
    }
    for (;;) {
        int n;
        if (len + 1 >= cap) {
            size_t ncap = cap * 2 > max + 2 ? max + 2 : cap * 2;
            char *grown;
            if (ncap <= cap) {
                free(buf);
                return reply_too_big(r);
            }
            grown = realloc(buf, ncap);
            if (grown == NULL) {
                free(buf);
                return reply_internal(r, RF_ENOMEM);
            }
            buf = grown;
            cap = ncap;
        }
        n = mg_read(r->conn, buf + len, cap - len - 1);
        if (n < 0) {
            free(buf);
            return reply_error(r, 400, "validation_error", "the request body could not be read",
                               NULL, NULL);
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
        if (len > max) {
            free(buf);
            return reply_too_big(r);
        }
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return 0;
}

static bool
query_var(req *r, const char *name, char *buf, size_t len, bool *present)
{
    const char *q = r->ri->query_string;
    int n;

    *present = false;
    if (q == NULL) {
        return true;
    }
    n = mg_get_var(q, strlen(q), name, buf, len);
    if (n == -1) {
        return true; /* absent */
    }
    *present = true;
    return n >= 0; /* -2: too long */
}

/* page_token: base64url (no padding) of "r:<row_number>". */
static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void
token_encode(uint32_t row, char *out, size_t len)
{
    char plain[32];
    size_t n = (size_t)snprintf(plain, sizeof(plain), "r:%u", row);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;

    for (size_t i = 0; i < n && o + 1 < len; i++) {
        acc = (acc << 8) | (unsigned char)plain[i];
        bits += 8;
        while (bits >= 6 && o + 1 < len) {
            bits -= 6;
            out[o++] = b64[(acc >> bits) & 0x3F];
        }
    }
    if (bits > 0 && o + 1 < len) {
        out[o++] = b64[(acc << (6 - bits)) & 0x3F];
    }
    out[o] = '\0';
}

static bool
token_decode(const char *tok, uint32_t *row)
{
    char plain[32];
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    char *end = NULL;
    unsigned long v;

    for (const char *p = tok; *p != '\0'; p++) {
        const char *pos = strchr(b64, *p);
        if (pos == NULL) {
            return false;
        }
        acc = (acc << 6) | (uint32_t)(pos - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= sizeof(plain)) {
                return false;
            }
            plain[o++] = (char)((acc >> bits) & 0xFF);
        }
    }
    plain[o] = '\0';
    if (strncmp(plain, "r:", 2) != 0 || !isdigit((unsigned char)plain[2])) {
        return false;
    }
    v = strtoul(plain + 2, &end, 10);
    if (*end != '\0' || v > UINT32_MAX) {
        return false;
    }
    *row = (uint32_t)v;
    return true;
}

/* ---- handlers ---- */

static int
h_health(req *r)
{
    return send_json(r, 200, json_pack("{s:s}", "status", "ok"), NULL);
}

static int
send_job(req *r, const char *job_id, int status)
{
    rf_job_view v;
    rf_err rv = rf_jobs_get(r->api->st, job_id, rf_now_ms(), &v);
    char location[256];
    int out;

    if (rv == RF_ENOTFOUND) {
        char what[200];
        snprintf(what, sizeof(what), "bulk job '%.128s'", job_id);
        return reply_not_found(r, what);
    }
    if (rv != RF_OK) {
        return reply_internal(r, rv);
    }
    snprintf(location, sizeof(location), "Location: /api/%sbulk-jobs/%s\r\n",
             r->style == STYLE_V1 ? "v1/" : "", v.job.id);
    out = reply_ok(r, status, job_json(&v), status == 201 ? location : NULL);
    rf_job_view_clear(&v);
    return out;
}

static int
h_create(req *r)
{
    rf_job_spec spec;
    rf_rows rows = {0};
    rf_verr verr;
    char *body = NULL;
    size_t len = 0;
    char job_id[RF_ID_MAX];
    int status;
    rf_err rv;

    memset(&spec, 0, sizeof(spec));
    memset(&verr, 0, sizeof(verr));
    status = read_body(r, &body, &len);
    if (status != 0) {
        return status;
    }
    rv = rf_job_request_parse(body, len, r->api->cfg, &spec, &verr);
    if (rv == RF_OK) {
        rv = rf_source_read(&spec.source, r->api->cfg, &rows, &verr);
    }
    if (rv == RF_EINVAL || rv == RF_ETOOBIG) {
        rf_info("http: job request refused [%s]: %s", r->cid, verr.message);
        status = reply_verr(r, 400, &verr);
        goto out;
    }
    if (rv != RF_OK) {
        status = reply_internal(r, rv);
        goto out;
    }
    rv = rf_jobs_create(r->api->st, r->api->cfg, &spec, &rows, rf_now_ms(), job_id);
    if (rv != RF_OK) {
        status = reply_internal(r, rv);
        goto out;
    }
    status = send_job(r, job_id, 201);
out:
    free(body);
    rf_rows_free(&rows);
    rf_job_spec_clear(&spec);
    return status;
}

static int
h_get(req *r)
{
    return send_job(r, r->params[0], 200);
}

static int
h_progress(req *r)
{
    rf_job_view v;
    rf_err rv = rf_jobs_get(r->api->st, r->params[0], rf_now_ms(), &v);
    int status;

    if (rv == RF_ENOTFOUND) {
        char what[200];
        snprintf(what, sizeof(what), "bulk job '%.128s'", r->params[0]);
        return reply_not_found(r, what);
    }
    if (rv != RF_OK) {
        return reply_internal(r, rv);
    }
    status = reply_ok(r, 200, progress_json(&v), NULL);
    rf_job_view_clear(&v);
    return status;
}

static int
h_videos(req *r)
{
    static const char *const states[] = {"pending", "processing", "completed", "failed", "skipped"};
    char state[32] = "", size_text[32] = "", token[128] = "";
    bool has_state, has_size, has_token, ok = false;
    long page_size = PAGE_SIZE_DEFAULT;
    uint32_t after = 0;
    rf_video_view *views = NULL;
    size_t n = 0;
    bool more = false;
    json_t *list, *body;
    rf_verr verr;
    rf_err rv;

    if (!query_var(r, "state", state, sizeof(state), &has_state)) {
        has_state = true;
        state[0] = '?';
        state[1] = '\0';
    }
    if (has_state && state[0] != '\0') {
        for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
            ok = ok || strcmp(states[i], state) == 0;
        }
        if (!ok) {
            rf_verr_set(&verr, "state", "invalid_value",
                        "state must be one of pending, processing, completed, failed, skipped");
            return reply_verr(r, 400, &verr);
        }
    }
    if (!query_var(r, "page_size", size_text, sizeof(size_text), &has_size) ||
        (has_size && size_text[0] != '\0')) {
        char *end = NULL;
        page_size = strtol(size_text, &end, 10);
        if (size_text[0] == '\0' || *end != '\0' || page_size < 1) {
            rf_verr_set(&verr, "page_size", "invalid_value",
                        "page_size must be a whole number from 1 to %d", PAGE_SIZE_MAX);
            return reply_verr(r, 400, &verr);
        }
        if (page_size > PAGE_SIZE_MAX) {
            page_size = PAGE_SIZE_MAX;
        }
    }
    if (!query_var(r, "page_token", token, sizeof(token), &has_token) ||
        (has_token && token[0] != '\0' && !token_decode(token, &after))) {
        rf_verr_set(&verr, "page_token", "invalid_value", "page_token is not a valid token");
        return reply_verr(r, 400, &verr);
    }
    rv = rf_jobs_videos(r->api->st, r->params[0], has_state && state[0] != '\0' ? state : NULL,
                        after, (size_t)page_size, &views, &n, &more);
    if (rv == RF_ENOTFOUND) {
        char what[200];
        snprintf(what, sizeof(what), "bulk job '%.128s'", r->params[0]);
        return reply_not_found(r, what);
    }
    if (rv != RF_OK) {
        return reply_internal(r, rv);
    }
    list = json_array();
    for (size_t i = 0; list != NULL && i < n; i++) {
        json_t *v = video_json(&views[i]);
        if (v == NULL || json_array_append_new(list, v) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    if (more && n > 0) {
        char next[64];
        token_encode(views[n - 1].item.row_number, next, sizeof(next));
        body = json_pack("{s:o, s:s}", "videos", list, "next_page_token", next);
    } else {
        body = json_pack("{s:o, s:n}", "videos", list, "next_page_token");
    }
    rf_video_views_free(views, n);
    return reply_ok(r, 200, body, NULL);
}

/* ---- routing ---- */

/* Matches path against pattern segment by segment, capturing "{}". */
static bool
match(const char *pattern, const char *path, req *r)
{
    int n_params = 0;

    for (;;) {
        const char *pe, *se;
        size_t plen, slen;

        if (*pattern == '\0' || *path == '\0') {
            if (*pattern == '\0' && *path == '\0') {
                r->n_params = n_params;
                return true;
            }
            return false;
        }
        if (*pattern != '/' || *path != '/') {
            return false;
        }
        pattern++;
        path++;
        pe = strchr(pattern, '/');
        se = strchr(path, '/');
        plen = pe != NULL ? (size_t)(pe - pattern) : strlen(pattern);
        slen = se != NULL ? (size_t)(se - path) : strlen(path);
        if (plen == 2 && strncmp(pattern, "{}", 2) == 0) {
            if (slen == 0 || slen >= sizeof(r->params[0]) || n_params >= MAX_PARAMS) {
                return false;
            }
            memcpy(r->params[n_params], path, slen);
            r->params[n_params][slen] = '\0';
            n_params++;
        } else if (plen != slen || strncmp(pattern, path, plen) != 0) {
            return false;
        }
        pattern += plen;
        path += slen;
    }
}

static bool
cid_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64) {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!isalnum((unsigned char)*s) && strchr("-_.:", *s) == NULL) {
            return false;
        }
    }
    return true;
}

static int
route_request(req *r)
{
    const char *path = r->ri->local_uri != NULL ? r->ri->local_uri : "/";
    const char *method = r->ri->request_method;
    route_scope scope = SCOPE_ROOT;
    char rest[512];
    char allow[128] = "";
    size_t n;

    r->style = STYLE_V1;
    if (strncmp(path, "/api/v1/", 8) == 0) {
        scope = SCOPE_API;
        path += 7;
    } else if (strncmp(path, "/api/", 5) == 0) {
        scope = SCOPE_API;
        r->style = STYLE_WRAPPED;
        path += 4;
    }
    if (rf_strlcpy(rest, path, sizeof(rest)) != RF_OK) {
        return reply_error(r, 404, "not_found", "no such endpoint", NULL, NULL);
    }
    n = strlen(rest);
    if (n > 1 && rest[n - 1] == '/') {
        rest[n - 1] = '\0'; /* one trailing slash is forgiven */
    }
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const route *rt = &routes[i];
        if (rt->scope != scope || !match(rt->pattern, rest, r)) {
            continue;
        }
        if (strcmp(rt->method, method) == 0) {
            return rt->fn(r);
        }
        if (strstr(allow, rt->method) == NULL) {
            size_t used = strlen(allow);
            snprintf(allow + used, sizeof(allow) - used, "%s%s", used > 0 ? ", " : "", rt->method);
        }
    }
    if (allow[0] != '\0') {
        char header[160], msg[192];
        snprintf(header, sizeof(header), "Allow: %s\r\n", allow);
        snprintf(msg, sizeof(msg), "method %s is not allowed here (allowed: %s)", method, allow);
        if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
            strcmp(method, "PATCH") == 0) {
            drain_body(r);
        }
        return reply_error(r, 405, "method_not_allowed", msg, json_pack("{s:s}", "allow", allow),
                           header);
    }
    return reply_error(r, 404, "not_found", "no such endpoint", NULL, NULL);
}

static int
on_request(struct mg_connection *conn, void *cbdata)
{
    req r;
    const char *cid;
    int64_t t0 = rf_mono_ms();
    int status;

    memset(&r, 0, sizeof(r));
    r.api = cbdata;
    r.conn = conn;
    r.ri = mg_get_request_info(conn);
    cid = mg_get_header(conn, "X-Correlation-Id");
    if (cid != NULL && cid_ok(cid)) {
        snprintf(r.cid, sizeof(r.cid), "%s", cid);
    } else {
        rf_new_id("req_", r.cid, sizeof(r.cid));
    }
    status = route_request(&r);
    rf_info("http %s %s%s%s -> %d in %lld ms [cid %s]", r.ri->request_method,
            r.ri->local_uri != NULL ? r.ri->local_uri : "?", r.ri->query_string != NULL ? "?" : "",
            r.ri->query_string != NULL ? r.ri->query_string : "", status,
            (long long)(rf_mono_ms() - t0), r.cid);
    return status;
}

static int
on_log_message(const struct mg_connection *conn, const char *message)
{
    rf_warn("http: %s", message);
    return 1;
}

rf_err
rf_api_start(rf_store *st, const rf_coord_config *cfg, rf_api **out)
{
    struct mg_callbacks callbacks;
    char threads[16];
    const char *options[] = {
        "listening_ports", cfg->http_listen,    "num_threads", threads, "request_timeout_ms",
        "30000",           "enable_keep_alive", "no",          NULL};
    rf_api *api = calloc(1, sizeof(*api));

    *out = NULL;
    if (api == NULL) {
        return RF_ENOMEM;
    }
    snprintf(threads, sizeof(threads), "%lld", (long long)cfg->http_threads);
    api->st = st;
    api->cfg = cfg;
    memset(&callbacks, 0, sizeof(callbacks));
    callbacks.log_message = on_log_message;
    mg_init_library(0);
    api->ctx = mg_start(&callbacks, api, options);
    if (api->ctx == NULL) {
        rf_error("http: cannot listen on %s", cfg->http_listen);
        mg_exit_library();
        free(api);
        return RF_ENET;
    }
    mg_set_request_handler(api->ctx, "/", on_request, api);
    rf_info("http: listening on %s (port %d)", cfg->http_listen, rf_api_port(api));
    *out = api;
    return RF_OK;
}

int
rf_api_port(const rf_api *api)
{
    struct mg_server_port ports[4];
    int n;

    if (api == NULL || api->ctx == NULL) {
        return -1;
    }
    memset(ports, 0, sizeof(ports));
    n = mg_get_server_ports(api->ctx, 4, ports);
    return n > 0 ? ports[0].port : -1;
}

void
rf_api_stop(rf_api **apip)
{
    rf_api *api;

    if (apip == NULL || *apip == NULL) {
        return;
    }
    api = *apip;
    if (api->ctx != NULL) {
        mg_stop(api->ctx);
        mg_exit_library();
    }
    free(api);
    *apip = NULL;
}
