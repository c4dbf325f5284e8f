/* HTTP server, routing, authentication, rate limits and response helpers.
 * The handlers are in api_jobs.c and api_templates.c. */
#include "api.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_int.h"
#include "live_wiring.h"
#include "rf_log.h"
#include "rf_util.h"

#define JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(6))
#define DRAIN_MAX (16u << 20) /* bytes of an oversized body read and dropped */
#define RATE_WINDOW_MS 60000

/* The embedded OpenAPI document (openapi_json.c, generated at build time). */
extern const char rf_openapi_json[];
extern const size_t rf_openapi_json_len;

static int h_health(rf_req *r);
static int h_openapi(rf_req *r);

/* The route table. Order matters only where a literal segment and "{}"
 * compete: /bulk-jobs/analytics is listed before /bulk-jobs/{}. */
static const rf_route routes[] = {
    {"POST", true, "/bulk-jobs", RF_SCOPE_JOBS_WRITE, rf_h_create},
    {"GET", true, "/bulk-jobs", RF_SCOPE_JOBS_READ, rf_h_list},
    {"GET", true, "/bulk-jobs/analytics", RF_SCOPE_JOBS_READ, rf_h_analytics},
    {"GET", true, "/bulk-jobs/{}", RF_SCOPE_JOBS_READ, rf_h_get},
    {"GET", true, "/bulk-jobs/{}/progress", RF_SCOPE_JOBS_READ, rf_h_progress},
    {"GET", true, "/bulk-jobs/{}/videos", RF_SCOPE_JOBS_READ, rf_h_videos},
    {"POST", true, "/bulk-jobs/{}/pause", RF_SCOPE_JOBS_WRITE, rf_h_pause},
    {"POST", true, "/bulk-jobs/{}/resume", RF_SCOPE_JOBS_WRITE, rf_h_resume},
    {"POST", true, "/bulk-jobs/{}/cancel", RF_SCOPE_JOBS_WRITE, rf_h_cancel},
    {"POST", true, "/bulk-jobs/{}/retry", RF_SCOPE_JOBS_WRITE, rf_h_retry},
    {"GET", true, "/bulk-jobs/{}/webhooks", RF_SCOPE_JOBS_READ, rf_h_webhooks},
    {"GET", true, "/webhooks/secret", RF_SCOPE_JOBS_WRITE, rf_h_webhook_secret},
    {"GET", true, "/templates", RF_SCOPE_JOBS_READ, rf_h_templates_list},
    {"POST", true, "/templates", RF_SCOPE_TEMPLATES_WRITE, rf_h_templates_create},
    {"GET", true, "/templates/{}", RF_SCOPE_JOBS_READ, rf_h_template_get},
    {"POST", true, "/sheets/connect", RF_SCOPE_SHEETS_CONNECT, rf_h_sheets_connect},
    {"GET", true, "/openapi.json", RF_API_PUBLIC, h_openapi},
    {"GET", false, "/healthz", RF_API_PUBLIC, h_health},
};

#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

size_t
rf_api_route_count(void)
{
    return N_ROUTES;
}

bool
rf_api_route_at(size_t i, const char **method, const char **path, bool *api_scoped)
{
    if (i >= N_ROUTES) {
        return false;
    }
    *method = routes[i].method;
    *path = routes[i].pattern;
    *api_scoped = routes[i].api;
    return true;
}

const char *
rf_api_openapi(size_t *len)
{
    if (len != NULL) {
        *len = rf_openapi_json_len;
    }
    return rf_openapi_json;
}

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
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

int
rf_api_send_text(rf_req *r, int status, const char *text, const char *extra)
{
    size_t len = strlen(text);

    mg_printf(r->conn,
              "HTTP/1.1 %d %s\r\n"
              "Content-Type: application/json\r\n"
              "Content-Length: %zu\r\n"
              "X-Correlation-Id: %s\r\n"
              "Cache-Control: no-store\r\n"
              "%s%s"
              "Connection: close\r\n\r\n",
              status, status_text(status), len, r->cid, r->hdrs, extra != NULL ? extra : "");
    mg_write(r->conn, text, len);
    return status;
}

int
rf_api_send_json(rf_req *r, int status, json_t *body, const char *extra)
{
    static const char fallback[] =
        "{\"error_code\":\"internal_error\",\"error_message\":\"out of memory\",\"detail\":null}";
    char *text = body != NULL ? json_dumps(body, JSON_FLAGS) : NULL;
    int out;

    json_decref(body);
    if (text == NULL) {
        return rf_api_send_text(r, 500, fallback, NULL);
    }
    out = rf_api_send_text(r, status, text, extra);
    free(text);
    return out;
}

char *
rf_api_render_ok(rf_req *r, json_t *data)
{
    char *text;

    if (data == NULL) {
        return NULL;
    }
    if (r->style == RF_STYLE_WRAPPED) {
        data = json_pack("{s:b, s:o}", "success", 1, "data", data);
        if (data == NULL) {
            return NULL;
        }
    }
    text = json_dumps(data, JSON_FLAGS);
    json_decref(data);
    return text;
}

int
rf_api_reply_ok(rf_req *r, int status, json_t *data, const char *extra)
{
    char *text = rf_api_render_ok(r, data);
    int out;

    if (text == NULL) {
        return rf_api_send_json(r, 500, NULL, NULL);
    }
    out = rf_api_send_text(r, status, text, extra);
    free(text);
    return out;
}

int
rf_api_reply_error(rf_req *r, int status, const char *code, const char *message, json_t *detail,
                   const char *extra)
{
    json_t *body;

    if (detail == NULL) {
        detail = json_null();
    }
    if (r->style == RF_STYLE_WRAPPED) {
        body = json_pack("{s:b, s:{s:s, s:s, s:o}}", "success", 0, "error", "code", code, "message",
                         message, "detail", detail);
    } else {
        body = json_pack("{s:s, s:s, s:o}", "error_code", code, "error_message", message, "detail",
                         detail);
    }
    return rf_api_send_json(r, status, body, extra);
}

int
rf_api_reply_verr(rf_req *r, int status, const rf_verr *e)
{
    return rf_api_reply_error(r, status, "validation_error", e->message,
                              json_pack("{s:s, s:s}", "field", e->field, "reason", e->reason),
                              NULL);
}

int
rf_api_reply_internal(rf_req *r, rf_err rv)
{
    char msg[128];

    snprintf(msg, sizeof(msg), "the request could not be completed: %s", rf_strerror(rv));
    return rf_api_reply_error(r, 500, "internal_error", msg, NULL, NULL);
}

int
rf_api_reply_not_found(rf_req *r, const char *what)
{
    char msg[256];

    snprintf(msg, sizeof(msg), "%s was not found", what);
    return rf_api_reply_error(r, 404, "not_found", msg, NULL, NULL);
}

int
rf_api_reply_job_not_found(rf_req *r, const char *job_id)
{
    char what[200];

    snprintf(what, sizeof(what), "bulk job '%.128s'", job_id);
    return rf_api_reply_not_found(r, what);
}

json_t *
rf_api_time(int64_t ms)
{
    char buf[40];

    if (ms <= 0) {
        return json_null();
    }
    rf_time_rfc3339(ms, buf, sizeof(buf));
    return json_string(buf);
}

json_t *
rf_api_str_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

const char *
rf_api_tenant(const rf_req *r)
{
    return r->who.tenant[0] != '\0' ? r->who.tenant : "default";
}

/* ---- request helpers ---- */

/* Reads and drops up to DRAIN_MAX bytes of a body we refuse, so that a client
 * still sending it gets to read our answer instead of a reset. */
static void
drain_body(rf_req *r)
{
    char scratch[16384];
    size_t total = 0;
    int n;

    while (total < DRAIN_MAX && (n = mg_read(r->conn, scratch, sizeof(scratch))) > 0) {
        total += (size_t)n;
    }
}

static bool
expects_continue(rf_req *r)
{
    const char *e = mg_get_header(r->conn, "Expect");
    return e != NULL && strcasecmp(e, "100-continue") == 0;
}

/* Drains the body of a request refused before its handler ran. */
static void
drain_refused(rf_req *r)
{
    const char *m = r->ri->request_method;

    if (!expects_continue(r) &&
        (strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0)) {
        drain_body(r);
    }
}

static int
reply_too_big(rf_req *r)
{
    char msg[128];

    if (!expects_continue(r)) {
        drain_body(r);
    }
    snprintf(msg, sizeof(msg), "the request body is larger than %lld bytes",
             (long long)r->api->cfg->max_body_bytes);
    return rf_api_reply_error(
        r, 413, "payload_too_large", msg,
        json_pack("{s:I}", "max_body_bytes", (json_int_t)r->api->cfg->max_body_bytes), NULL);
}

int
rf_api_read_body(rf_req *r, char **out, size_t *out_len)
{
    size_t max = (size_t)r->api->cfg->max_body_bytes;
    long long cl = r->ri->content_length;
    size_t cap, len = 0;
    char *buf;

    *out = NULL;
    *out_len = 0;
    /* Refused from Content-Length before a byte of it is read. */
    if (cl > (long long)max) {
        return reply_too_big(r);
    }
    cap = cl >= 0 ? (size_t)cl + 1 : 65536;
    buf = malloc(cap);
    if (buf == NULL) {
        return rf_api_reply_internal(r, RF_ENOMEM);
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
                return rf_api_reply_internal(r, RF_ENOMEM);
            }
            buf = grown;
            cap = ncap;
        }
        n = mg_read(r->conn, buf + len, cap - len - 1);
        if (n < 0) {
            free(buf);
            return rf_api_reply_error(r, 400, "validation_error",
                                      "the request body could not be read", NULL, NULL);
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

int
rf_api_skip_body(rf_req *r)
{
    char *body = NULL;
    size_t len = 0;
    int status = rf_api_read_body(r, &body, &len);

    free(body);
    return status;
}

bool
rf_api_query(rf_req *r, const char *name, char *buf, size_t len, bool *present)
{
    const char *q = r->ri->query_string;
    int n;

    *present = false;
    buf[0] = '\0';
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

/* ---- small handlers ---- */

static int
h_health(rf_req *r)
{
    return rf_api_send_json(r, 200, json_pack("{s:s}", "status", "ok"), NULL);
}

static int
h_openapi(rf_req *r)
{
    /* The document itself, in both path styles: tools read it as is. */
    return rf_api_send_text(r, 200, rf_openapi_json, NULL);
}

/* ---- authentication and limits ---- */

/* Makes text safe inside a quoted header parameter. */
static void
header_safe(char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e || *s == '"' || *s == '\\') {
            *s = '?';
        }
    }
}

static int
refuse_unauthorized(rf_req *r, const char *why, bool had_token)
{
    char header[512], reason[256];

    snprintf(reason, sizeof(reason), "%s", why);
    header_safe(reason);
    if (had_token) {
        snprintf(header, sizeof(header),
                 "WWW-Authenticate: Bearer realm=\"renderfarm\", error=\"invalid_token\","
                 " error_description=\"%s\"\r\n",
                 reason);
    } else {
        /* RFC 6750 3.1: no error code when the request carried no credentials. */
        snprintf(header, sizeof(header), "WWW-Authenticate: Bearer realm=\"renderfarm\"\r\n");
    }
    drain_refused(r);
    return rf_api_reply_error(r, 401, "unauthorized", why, NULL, header);
}

static void add_header(rf_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
add_header(rf_req *r, const char *fmt, ...)
{
    size_t used = strlen(r->hdrs);
    va_list ap;

    if (used >= sizeof(r->hdrs) - 1) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(r->hdrs + used, sizeof(r->hdrs) - used, fmt, ap);
    va_end(ap);
}

/* The RateLimit headers of draft-ietf-httpapi-ratelimit-headers (policies
 * "user" and "project", w = 60 s), plus the older single-policy
 * RateLimit-Limit/-Remaining/-Reset naming the tighter bucket. */
static void
rate_headers(rf_req *r, const rf_rl_result *rl)
{
    const rf_rl_bucket *tight =
        rl->project.remaining < rl->user.remaining ? &rl->project : &rl->user;

    add_header(r, "RateLimit-Policy: \"user\";q=%lld;w=60, \"project\";q=%lld;w=60\r\n",
               (long long)rl->user.limit, (long long)rl->project.limit);
    add_header(r, "RateLimit: \"user\";r=%lld;t=%lld, \"project\";r=%lld;t=%lld\r\n",
               (long long)rl->user.remaining, (long long)rl->user.reset_s,
               (long long)rl->project.remaining, (long long)rl->project.reset_s);
    add_header(r, "RateLimit-Limit: %lld\r\nRateLimit-Remaining: %lld\r\nRateLimit-Reset: %lld\r\n",
               (long long)tight->limit, (long long)tight->remaining, (long long)tight->reset_s);
}

/* Authenticates, rate-limits and checks the route's scope. Returns 0 to go
 * on, or the status already sent. */
static int
gate(rf_req *r)
{
    const rf_route *rt = r->route;
    const rf_coord_config *cfg = r->api->cfg;
    rf_rl_result rl;
    char why[256] = "";
    unsigned need;

    if (rt->need == RF_API_PUBLIC) {
        return 0;
    }
    if (cfg->auth_disabled) {
        snprintf(r->who.sub, sizeof(r->who.sub), "anonymous");
        snprintf(r->who.tenant, sizeof(r->who.tenant), "default");
        r->who.scopes = RF_SCOPE_ALL;
    } else {
        const char *token = NULL;
        const char *h = mg_get_header(r->conn, "Authorization");
        if (rf_auth_bearer(h, &token) != RF_OK) {
            return refuse_unauthorized(
                r,
                h == NULL ? "a bearer token is required (Authorization: Bearer <token>)"
                          : "the Authorization header is not a Bearer token",
                h != NULL);
        }
        if (rf_auth_verify(&r->api->auth, token, rf_now_ms() / 1000, &r->who, why, sizeof(why)) !=
            RF_OK) {
            rf_info("http: token refused [cid %s]: %s", r->cid, why);
            return refuse_unauthorized(r, why, true);
        }
    }
    r->authed = true;
    if (rf_ratelimit_take(r->api->limits, r->who.tenant, r->who.sub, rf_mono_ms(), &rl) == RF_OK) {
        rate_headers(r, &rl);
    }
    if (!rl.allowed) {
        char msg[256], retry[64];
        json_t *violated = json_array();
        if (rl.user_exhausted) {
            json_array_append_new(violated, json_string("user"));
        }
        if (rl.project_exhausted) {
            json_array_append_new(violated, json_string("project"));
        }
        snprintf(msg, sizeof(msg), "too many requests for this %s; retry in %lld s",
                 rl.user_exhausted ? "user" : "project", (long long)rl.retry_after_s);
        snprintf(retry, sizeof(retry), "Retry-After: %lld\r\n", (long long)rl.retry_after_s);
        drain_refused(r);
        return rf_api_reply_error(
            r, 429, "rate_limited", msg,
            json_pack("{s:s, s:o, s:I}", "type",
                      "https://iana.org/assignments/http-problem-types#quota-exceeded",
                      "violated_policies", violated, "retry_after_s", (json_int_t)rl.retry_after_s),
            retry);
    }
    need = (unsigned)rt->need;
    if ((r->who.scopes & need) != need) {
        char msg[160], header[160];
        const char *scope = rf_auth_scope_name(need & ~r->who.scopes);
        if (scope == NULL) {
            scope = "?";
        }
        snprintf(msg, sizeof(msg), "this request needs the %s scope", scope);
        snprintf(header, sizeof(header),
                 "WWW-Authenticate: Bearer realm=\"renderfarm\", error=\"insufficient_scope\","
                 " scope=\"%s\"\r\n",
                 scope);
        drain_refused(r);
        return rf_api_reply_error(r, 403, "forbidden", msg,
                                  json_pack("{s:s}", "required_scope", scope), header);
    }
    return 0;
}

/* ---- routing ---- */

/* Matches path against pattern segment by segment, capturing "{}". */
static bool
match(const char *pattern, const char *path, rf_req *r)
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
            if (slen == 0 || slen >= sizeof(r->params[0]) || n_params >= RF_API_MAX_PARAMS) {
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
route_request(rf_req *r)
{
    const char *path = r->ri->local_uri != NULL ? r->ri->local_uri : "/";
    const char *method = r->ri->request_method;
    bool api = false;
    char rest[512];
    char allow[128] = "";
    size_t n;

    r->style = RF_STYLE_V1;
    if (strncmp(path, "/api/v1/", 8) == 0) {
        api = true;
        path += 7;
    } else if (strncmp(path, "/api/", 5) == 0) {
        api = true;
        r->style = RF_STYLE_WRAPPED;
        path += 4;
    }
    if (rf_strlcpy(rest, path, sizeof(rest)) != RF_OK) {
        return rf_api_reply_error(r, 404, "not_found", "no such endpoint", NULL, NULL);
    }
    n = strlen(rest);
    if (n > 1 && rest[n - 1] == '/') {
        rest[n - 1] = '\0'; /* one trailing slash is forgiven */
    }
    for (size_t i = 0; i < N_ROUTES; i++) {
        const rf_route *rt = &routes[i];
        if (rt->api != api || !match(rt->pattern, rest, r)) {
            continue;
        }
        if (strcmp(rt->method, method) == 0) {
            int status;
            r->route = rt;
            status = gate(r);
            return status != 0 ? status : rt->fn(r);
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
        drain_refused(r);
        return rf_api_reply_error(r, 405, "method_not_allowed", msg,
                                  json_pack("{s:s}", "allow", allow), header);
    }
    return rf_api_reply_error(r, 404, "not_found", "no such endpoint", NULL, NULL);
}

static int
on_request(struct mg_connection *conn, void *cbdata)
{
    rf_req r;
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
    rf_info("http %s %s%s%s -> %d in %lld ms [cid %s tenant %s user %s]", r.ri->request_method,
            r.ri->local_uri != NULL ? r.ri->local_uri : "?", r.ri->query_string != NULL ? "?" : "",
            r.ri->query_string != NULL ? r.ri->query_string : "", status,
            (long long)(rf_mono_ms() - t0), r.cid, r.authed ? r.who.tenant : "-",
            r.authed ? r.who.sub : "-");
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
    const char *options[] = {"listening_ports",
                             cfg->http_listen,
                             "num_threads",
                             threads,
                             "request_timeout_ms",
                             "30000",
                             "enable_keep_alive",
                             "no",
                             "enable_websocket_ping_pong",
                             "yes",
                             "websocket_timeout_ms",
                             "20000",
                             NULL};
    rf_api *api = calloc(1, sizeof(*api));
    rf_err rv;

    *out = NULL;
    if (api == NULL) {
        return RF_ENOMEM;
    }
    /* Every open WebSocket holds a worker thread for its lifetime. */
    snprintf(threads, sizeof(threads), "%lld",
             (long long)(cfg->http_threads + (cfg->live != NULL ? cfg->ws_max_clients : 0)));
    api->st = st;
    api->cfg = cfg;
    rf_auth_params_from_config(cfg, &api->auth);
    rv = rf_ratelimit_new(cfg->rate_user_per_min, cfg->rate_project_per_min, RATE_WINDOW_MS,
                          &api->limits);
    if (rv != RF_OK) {
        free(api);
        return rv;
    }
    memset(&callbacks, 0, sizeof(callbacks));
    callbacks.log_message = on_log_message;
    mg_init_library(0);
    api->ctx = mg_start(&callbacks, api, options);
    if (api->ctx == NULL) {
        rf_error("http: cannot listen on %s", cfg->http_listen);
        mg_exit_library();
        rf_ratelimit_free(&api->limits);
        free(api);
        return RF_ENET;
    }
    mg_set_request_handler(api->ctx, "/", on_request, api);
    if (cfg->live != NULL && rf_live_attach_ws(cfg->live, api->ctx, &api->auth) != RF_OK) {
        rf_warn("http: the live WebSocket feed is unavailable");
    }
    rf_info("http: listening on %s (port %d); auth %s; limits %lld/min per user, %lld/min per "
            "tenant",
            cfg->http_listen, rf_api_port(api), cfg->auth_disabled ? "DISABLED" : "HS256 JWT",
            (long long)cfg->rate_user_per_min, (long long)cfg->rate_project_per_min);
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
    rf_ratelimit_free(&api->limits);
    free(api);
    *apip = NULL;
}
