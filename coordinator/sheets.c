/* Google Sheets API v4 client: one libcurl easy handle per request (a read is
 * one request, so connection reuse would buy little), a retry loop with
 * backoff around it, and the parsers of Google's answers. */
#include "sheets.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "rf_log.h"
#include "rf_util.h"

#define CSV_CELL_MAX (256 * 1024) /* Google cells hold 50,000 characters */
#define WAIT_POLL_MS 200

/* ---- configuration and client ---- */

void
rf_sheets_config_defaults(rf_sheets_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->api_base, sizeof(cfg->api_base), "https://sheets.googleapis.com");
    snprintf(cfg->csv_export_base, sizeof(cfg->csv_export_base), "https://docs.google.com");
    cfg->csv_export = true;
    cfg->max_rows = 10000;
    cfg->max_response_bytes = 64 * 1024 * 1024;
    cfg->timeout_ms = 30000;
    cfg->max_retries = 5;
    cfg->backoff_initial_ms = 1000;
    cfg->backoff_max_ms = 32000;
    cfg->read_calls_per_min = 60;
    cfg->write_calls_per_min = 60;
    cfg->write_batch_ranges = 100;
    cfg->quota_window_ms = 60000;
}

/* A sliding one-minute window of reserved call times. */
typedef struct quota_window {
    pthread_mutex_t mu;
    int64_t *times; /* ring of the last `cap` reservations (monotonic ms) */
    size_t cap, head, count;
    int64_t window_ms;
    bool ready; /* mu initialised */
} quota_window;

struct rf_sheets_client {
    rf_sheets_config cfg;
    rf_gauth *gauth;
    rf_sheets_access access;
    quota_window quota[2]; /* read, write */
};

static rf_err
quota_init(quota_window *q, int64_t per_min, int64_t window_ms)
{
    memset(q, 0, sizeof(*q));
    q->window_ms = window_ms;
    q->cap = per_min > 0 ? (size_t)per_min : 0;
    if (q->cap > 0) {
        q->times = calloc(q->cap, sizeof(*q->times));
        if (q->times == NULL) {
            return RF_ENOMEM;
        }
    }
    if (pthread_mutex_init(&q->mu, NULL) != 0) {
        free(q->times);
        q->times = NULL;
        return RF_ENOMEM;
    }
    q->ready = true;
    return RF_OK;
}

static void
quota_destroy(quota_window *q)
{
    if (q->ready) {
        pthread_mutex_destroy(&q->mu);
    }
    free(q->times);
    memset(q, 0, sizeof(*q));
}

/* Reserves the next call time and returns how long to wait for it: the
 * call may go when the one `cap` calls before it is a minute old. */
static int64_t
quota_reserve(quota_window *q)
{
    int64_t now = rf_mono_ms(), at = now;

    if (q->cap == 0) {
        return 0;
    }
    pthread_mutex_lock(&q->mu);
    if (q->count == q->cap) {
        int64_t oldest = q->times[q->head];
        if (oldest + q->window_ms > at) {
            at = oldest + q->window_ms;
        }
    } else {
        q->count++;
    }
    q->times[q->head] = at;
    q->head = (q->head + 1) % q->cap;
    pthread_mutex_unlock(&q->mu);
    return at - now;
}

static bool
base_url_ok(const char *url)
{
    return strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0;
}

rf_err
rf_sheets_client_new(const rf_sheets_config *cfg, rf_sheets_client **out, char *err, size_t err_len)
{
    rf_sheets_client *c;
    rf_err rv = RF_OK;

    *out = NULL;
    if (!base_url_ok(cfg->api_base) || !base_url_ok(cfg->csv_export_base)) {
        rf_errf(err, err_len, "sheets_api_base and sheets_csv_export_base must be http(s) URLs");
        return RF_EINVAL;
    }
    if (cfg->max_rows < 1 || cfg->max_rows > RF_A1_MAX_ROW || cfg->max_retries < 0 ||
        cfg->max_retries > 20 || cfg->timeout_ms < 1 || cfg->max_response_bytes < 1024 ||
        cfg->backoff_initial_ms < 1 || cfg->backoff_max_ms < cfg->backoff_initial_ms ||
        cfg->write_batch_ranges < 1 || cfg->read_calls_per_min < 0 ||
        cfg->write_calls_per_min < 0 || cfg->read_calls_per_min > 100000 ||
        cfg->write_calls_per_min > 100000 || cfg->quota_window_ms < 1) {
        rf_errf(err, err_len, "sheets configuration: a limit is out of range");
        return RF_EINVAL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return RF_ENOMEM;
    }
    c->cfg = *cfg;
    /* "https://host/" and "https://host" name the same base */
    for (char *b = c->cfg.api_base; strlen(b) > 8 && b[strlen(b) - 1] == '/';) {
        b[strlen(b) - 1] = '\0';
    }
    for (char *b = c->cfg.csv_export_base; strlen(b) > 8 && b[strlen(b) - 1] == '/';) {
        b[strlen(b) - 1] = '\0';
    }
    rv = quota_init(&c->quota[RF_SHEETS_QUOTA_READ], cfg->read_calls_per_min, cfg->quota_window_ms);
    if (rv == RF_OK) {
        rv = quota_init(&c->quota[RF_SHEETS_QUOTA_WRITE], cfg->write_calls_per_min,
                        cfg->quota_window_ms);
        if (rv != RF_OK) {
            quota_destroy(&c->quota[RF_SHEETS_QUOTA_READ]);
        }
    }
    if (rv != RF_OK) {
        free(c);
        return rv;
    }
    if (cfg->credentials_file[0] != '\0') {
        rf_gauth_opts o = {.timeout_ms = cfg->timeout_ms};
        rv = rf_gauth_load(cfg->credentials_file, &o, &c->gauth, err, err_len);
        if (rv != RF_OK) {
            rf_sheets_client_free(&c);
            return rv;
        }
        c->access = RF_SHEETS_ACCESS_SERVICE_ACCOUNT;
    } else if (cfg->api_key[0] != '\0') {
        c->access = RF_SHEETS_ACCESS_API_KEY;
    } else if (cfg->csv_export) {
        c->access = RF_SHEETS_ACCESS_CSV_EXPORT;
    } else {
        c->access = RF_SHEETS_ACCESS_NONE;
    }
    rf_info("sheets: reading with %s%s%s", rf_sheets_access_name(c->access),
            c->gauth != NULL ? " " : "", c->gauth != NULL ? rf_gauth_client_email(c->gauth) : "");
    *out = c;
    return RF_OK;
}

void
rf_sheets_client_free(rf_sheets_client **c)
{
    if (c == NULL || *c == NULL) {
        return;
    }
    rf_gauth_free(&(*c)->gauth);
    quota_destroy(&(*c)->quota[0]);
    quota_destroy(&(*c)->quota[1]);
    memset((*c)->cfg.api_key, 0, sizeof((*c)->cfg.api_key));
    free(*c);
    *c = NULL;
}

rf_sheets_access
rf_sheets_client_access(const rf_sheets_client *c)
{
    return c->access;
}

const char *
rf_sheets_client_email(const rf_sheets_client *c)
{
    return c->gauth != NULL ? rf_gauth_client_email(c->gauth) : "";
}

const rf_sheets_config *
rf_sheets_client_config(const rf_sheets_client *c)
{
    return &c->cfg;
}

rf_gauth *
rf_sheets_client_gauth(rf_sheets_client *c)
{
    return c->gauth;
}

const char *
rf_sheets_access_name(rf_sheets_access a)
{
    switch (a) {
    case RF_SHEETS_ACCESS_SERVICE_ACCOUNT:
        return "service_account";
    case RF_SHEETS_ACCESS_API_KEY:
        return "api_key";
    case RF_SHEETS_ACCESS_CSV_EXPORT:
        return "csv_export";
    case RF_SHEETS_ACCESS_NONE:
        break;
    }
    return "none";
}

/* ---- ids ---- */

static bool
id_char(char ch)
{
    unsigned char u = (unsigned char)ch;
    return u < 0x80 && (isalnum(u) || ch == '-' || ch == '_');
}

rf_err
rf_sheets_parse_id(const char *text, char id[RF_SHEETS_ID_MAX], char gid[RF_SHEETS_GID_MAX],
                   rf_gerror *e)
{
    const char *s = text != NULL ? text : "";
    const char *marker;
    size_t n = 0;

    id[0] = '\0';
    if (gid != NULL) {
        gid[0] = '\0';
    }
    while (isspace((unsigned char)*s)) {
        s++;
    }
    marker = strstr(s, "/spreadsheets/d/");
    if (marker != NULL) {
        const char *g;
        s = marker + strlen("/spreadsheets/d/");
        g = strstr(s, "gid=");
        if (g != NULL && gid != NULL) {
            size_t k = 0;
            g += 4;
            while (isdigit((unsigned char)g[k]) && k + 1 < RF_SHEETS_GID_MAX) {
                gid[k] = g[k];
                k++;
            }
            gid[k] = '\0';
        }
    }
    while (id_char(s[n])) {
        if (n + 1 >= RF_SHEETS_ID_MAX) {
            goto bad;
        }
        id[n] = s[n];
        n++;
    }
    id[n] = '\0';
    if (n == 0) {
        goto bad;
    }
    if (marker == NULL) {
        /* a bare id: nothing may follow but blanks */
        const char *rest = s + n;
        while (isspace((unsigned char)*rest)) {
            rest++;
        }
        if (*rest != '\0') {
            goto bad;
        }
    }
    return RF_OK;
bad:
    id[0] = '\0';
    rf_gerror_set(e, "invalid_sheet_id", 0, NULL,
                  "sheet_id must be the id in the sheet's URL (docs.google.com/spreadsheets/d/"
                  "<sheet_id>/edit: letters, digits, '-' and '_') or that URL itself");
    return RF_EINVAL;
}

/* ---- waiting ---- */

static int64_t
jitter(int64_t delay_ms)
{
    uint32_t r = 0;

    /* Full jitter over the upper half: spreads retries of many jobs apart
     * while keeping the exponential growth. */
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
        r = (uint32_t)rf_mono_ns();
    }
    if (delay_ms < 2) {
        return delay_ms;
    }
    return delay_ms / 2 + (int64_t)(r % (uint32_t)(delay_ms / 2 + 1));
}

/* Sleeps ms, polling hooks->keep_going; false when asked to stop. */
static bool
sleep_ms(const rf_sheets_hooks *hooks, int64_t ms)
{
    int64_t end = rf_mono_ms() + ms;

    for (;;) {
        int64_t now = rf_mono_ms(), chunk;
        struct timespec ts;

        if (now >= end) {
            return true;
        }
        chunk = end - now < WAIT_POLL_MS ? end - now : WAIT_POLL_MS;
        ts.tv_sec = (time_t)(chunk / 1000);
        ts.tv_nsec = (long)(chunk % 1000) * 1000000L;
        nanosleep(&ts, NULL);
        if (hooks != NULL && hooks->keep_going != NULL && !hooks->keep_going(hooks->ctx)) {
            return false;
        }
    }
}

/* Announces a wait and waits; false when the hooks said stop. */
static bool
wait_for(const rf_sheets_hooks *hooks, const char *reason, int64_t ms, int attempt)
{
    if (hooks != NULL && hooks->on_wait != NULL &&
        !hooks->on_wait(hooks->ctx, reason, ms, attempt)) {
        return false;
    }
    return sleep_ms(hooks, ms);
}

/* ---- one HTTP exchange ---- */

typedef struct xfer {
    rf_bodybuf body; /* moved into the response when the exchange ends */
    int64_t retry_after_ms;
} xfer;

static size_t
xfer_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    xfer *x = userdata;
    size_t n = size * nitems;

    if (n > 12 && strncasecmp(buf, "Retry-After:", 12) == 0) {
        long secs = strtol(buf + 12, NULL, 10);
        if (secs > 0 && secs < 3600) {
            x->retry_after_ms = (int64_t)secs * 1000;
        }
    }
    return n;
}

void
rf_sheets_response_clear(rf_sheets_response *r)
{
    if (r == NULL) {
        return;
    }
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* One try. Returns the curl code; *resp holds status and body. */
static CURLcode
http_once(const rf_sheets_client *c, const char *url, const char *bearer, const char *json_body,
          bool follow, rf_sheets_response *resp, xfer *x, char curl_err[CURL_ERROR_SIZE])
{
    struct curl_slist *headers = NULL, *grown;
    char auth[RF_GAUTH_TOKEN_MAX + 32];
    const char *ctype = NULL;
    CURL *h = curl_easy_init();
    CURLcode rc;

    rf_sheets_response_clear(resp);
    if (h == NULL) {
        return CURLE_OUT_OF_MEMORY;
    }
    memset(x, 0, sizeof(*x));
    x->body.max = (size_t)c->cfg.max_response_bytes;
    if (bearer != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer);
        grown = curl_slist_append(headers, auth);
        memset(auth, 0, sizeof(auth));
        if (grown == NULL) {
            rc = CURLE_OUT_OF_MEMORY;
            goto out;
        }
        headers = grown;
    }
    if (json_body != NULL) {
        grown = curl_slist_append(headers, "Content-Type: application/json; charset=utf-8");
        if (grown == NULL) {
            rc = CURLE_OUT_OF_MEMORY;
            goto out;
        }
        headers = grown;
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, json_body);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (follow) {
        /* Google's CSV export answers 307 to a googleusercontent.com URL. */
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->cfg.timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(c->cfg.timeout_ms < 10000 ? c->cfg.timeout_ms : 10000));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* gzip: Google compresses values */
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, rf_bodybuf_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x->body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, xfer_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "renderfarm-coordinator/0.1");
    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ctype) == CURLE_OK && ctype != NULL) {
        snprintf(resp->content_type, sizeof(resp->content_type), "%s", ctype);
    }
out:
    resp->body = x->body.data;
    resp->len = x->body.len;
    x->body.data = NULL;
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    return rc;
}

/* ---- error mapping ---- */

static bool
has_reason(json_t *err, const char *reason)
{
    static const char *const lists[] = {"details", "errors"};

    for (size_t l = 0; l < 2; l++) {
        json_t *arr = json_object_get(err, lists[l]);
        size_t i;
        json_t *item;
        json_array_foreach(arr, i, item)
        {
            const char *r = json_string_value(json_object_get(item, "reason"));
            if (r != NULL && strcmp(r, reason) == 0) {
                return true;
            }
        }
    }
    return false;
}

rf_err
rf_sheets_map_error(long status, const char *body, size_t len, const rf_sheets_errctx *ctx,
                    rf_gerror *e)
{
    json_t *root = body != NULL && len > 0 ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *err = json_object_get(root, "error");
    const char *gmsg = json_string_value(json_object_get(err, "message"));
    const char *gst = json_string_value(json_object_get(err, "status"));
    const char *id = ctx != NULL && ctx->sheet_id != NULL ? ctx->sheet_id : "";
    const char *range = ctx != NULL && ctx->range != NULL ? ctx->range : "";
    const char *email = ctx != NULL && ctx->client_email != NULL ? ctx->client_email : "";
    rf_sheets_access access = ctx != NULL ? ctx->access : RF_SHEETS_ACCESS_NONE;
    bool write = ctx != NULL && ctx->write;
    rf_err rv = RF_EINVAL;

    if (gmsg == NULL) {
        gmsg = "";
    }
    if (gst == NULL) {
        gst = "";
    }
    if (access == RF_SHEETS_ACCESS_CSV_EXPORT && (status == 401 || status == 403)) {
        rf_gerror_set(e, "sheet_not_public", status, gst,
                      "spreadsheet '%s' is not shared publicly: in Google Sheets choose Share > "
                      "General access > 'Anyone with the link' (Viewer), or configure an API key "
                      "or a service account",
                      id);
    } else if (status == 429 || strcmp(gst, "RESOURCE_EXHAUSTED") == 0) {
        rf_gerror_set(e, "rate_limited", status, gst,
                      "Google Sheets rate limit reached (%s): wait a minute and retry, or raise "
                      "the project's Sheets API quota",
                      gmsg[0] != '\0' ? gmsg : "HTTP 429");
        rv = RF_ENET;
    } else if (status >= 500) {
        rf_gerror_set(e, "service_unavailable", status, gst,
                      "Google Sheets is unavailable (HTTP %ld%s%s): retry later", status,
                      gmsg[0] != '\0' ? ": " : "", gmsg);
        rv = RF_ENET;
    } else if (has_reason(err, "API_KEY_INVALID") || strstr(gmsg, "API key not valid") != NULL) {
        rf_gerror_set(e, "invalid_api_key", status, gst,
                      "Google refused the configured API key (%s): set sheets_api_key to a key "
                      "from Google Cloud > APIs & Services > Credentials",
                      gmsg);
    } else if (strstr(gmsg, "missing a valid API key") != NULL) {
        rf_gerror_set(e, "invalid_api_key", status, gst,
                      "Google wants an API key (%s): configure sheets_api_key or a service "
                      "account",
                      gmsg);
    } else if (has_reason(err, "SERVICE_DISABLED") || has_reason(err, "accessNotConfigured") ||
               has_reason(err, "API_KEY_SERVICE_BLOCKED")) {
        rf_gerror_set(e, "sheets_api_disabled", status, gst,
                      "the Google Sheets API is not enabled for the credentials' project (%s): "
                      "enable it in Google Cloud > APIs & Services",
                      gmsg);
    } else if (status == 404 || strcmp(gst, "NOT_FOUND") == 0) {
        rf_gerror_set(e, "sheet_not_found", status, gst,
                      "spreadsheet '%s' was not found: check sheet_id (the part of the sheet's "
                      "URL between /d/ and /edit)",
                      id);
        rv = RF_ENOTFOUND;
    } else if (status == 401 || strcmp(gst, "UNAUTHENTICATED") == 0) {
        if (write && access != RF_SHEETS_ACCESS_SERVICE_ACCOUNT) {
            rf_gerror_set(e, "writeback_not_allowed", status, gst,
                          "writing results back needs a service account (API keys and public "
                          "links can only read): configure sheets_credentials_file");
        } else {
            rf_gerror_set(e, "invalid_credentials", status, gst,
                          "Google did not accept the coordinator's credentials (%s): check the "
                          "configured API key or service account key",
                          gmsg);
        }
    } else if (status == 403 || strcmp(gst, "PERMISSION_DENIED") == 0) {
        if (strstr(gmsg, "insufficient authentication scopes") != NULL) {
            rf_gerror_set(e, "writeback_not_allowed", status, gst,
                          "the service account's token may not write (%s)", gmsg);
        } else if (access == RF_SHEETS_ACCESS_SERVICE_ACCOUNT) {
            rf_gerror_set(e, "sheet_permission_denied", status, gst,
                          "the service account cannot %s spreadsheet '%s' (%s): share the sheet "
                          "with %s as %s%s",
                          write ? "edit" : "read", id, gmsg, email, write ? "Editor" : "Viewer",
                          write ? "" : ", or make it viewable by anyone with the link");
        } else {
            rf_gerror_set(e, "sheet_permission_denied", status, gst,
                          "spreadsheet '%s' is not shared with this API key's readers (%s): "
                          "share it as 'Anyone with the link can view', or configure a service "
                          "account and share the sheet with it",
                          id, gmsg);
        }
    } else if (strstr(gmsg, "Unable to parse range") != NULL) {
        rf_gerror_set(e, "invalid_range", status, gst,
                      "Google could not read the range '%s' (%s): check the A1 notation and "
                      "that the tab exists; quote tab names with spaces ('My Sheet'!A1:J100)",
                      range, gmsg);
    } else if (strstr(gmsg, "exceeds grid limits") != NULL) {
        rf_gerror_set(e, "invalid_range", status, gst,
                      "the range '%s' goes past the sheet's grid (%s): use a range inside the "
                      "sheet or an open-ended one such as A2:J",
                      range, gmsg);
    } else {
        rf_gerror_set(e, "sheet_request_invalid", status, gst,
                      "Google refused the request for spreadsheet '%s' (HTTP %ld%s%s)", id, status,
                      gmsg[0] != '\0' ? ": " : "", gmsg);
    }
    json_decref(root);
    return rv;
}

int
rf_sheets_error_http_status(const char *code)
{
    static const struct {
        const char *code;
        int status;
    } table[] = {
        {"sheet_not_found", 404},       {"sheet_permission_denied", 403},
        {"sheet_not_public", 403},      {"invalid_sheet_id", 400},
        {"invalid_range", 400},         {"range_too_large", 400},
        {"sheet_empty", 400},           {"writeback_not_allowed", 400},
        {"sheet_request_invalid", 400}, {"rate_limited", 429},
        {"invalid_api_key", 502},       {"invalid_credentials", 502},
        {"sheets_api_disabled", 502},   {"sheet_data_invalid", 502},
        {"service_unavailable", 503},   {"canceled", 409},
    };

    for (size_t i = 0; code != NULL && i < sizeof(table) / sizeof(table[0]); i++) {
        if (strcmp(table[i].code, code) == 0) {
            return table[i].status;
        }
    }
    return 500;
}

/* ---- requests with retries ---- */

rf_err
rf_sheets_request(rf_sheets_client *c, rf_sheets_access access, const char *scope,
                  rf_sheets_quota quota, const char *url, const char *json_body,
                  bool follow_redirects, const rf_sheets_hooks *hooks, const rf_sheets_errctx *ctx,
                  rf_sheets_response *resp, rf_gerror *e)
{
    char token[RF_GAUTH_TOKEN_MAX];
    char curl_err[CURL_ERROR_SIZE];
    char *full_url = NULL;
    const char *last_reason = "unavailable";
    bool refreshed = false;
    int attempt = 0;
    rf_gerror last;
    rf_err rv = RF_OK;

    memset(resp, 0, sizeof(*resp));
    memset(&last, 0, sizeof(last));
    if (access == RF_SHEETS_ACCESS_API_KEY) {
        char *key = curl_easy_escape(NULL, c->cfg.api_key, 0);
        int n;
        if (key == NULL) {
            return RF_ENOMEM;
        }
        n = asprintf(&full_url, "%s%skey=%s", url, strchr(url, '?') != NULL ? "&" : "?", key);
        curl_free(key);
        if (n < 0) {
            return RF_ENOMEM;
        }
        url = full_url;
    }
    for (;;) {
        int64_t wait = quota_reserve(&c->quota[quota]);
        CURLcode rc;
        xfer x;
        int64_t delay;

        memset(&x, 0, sizeof(x));
        if (wait > 0 && !wait_for(hooks, "quota", wait, 0)) {
            goto canceled;
        }
        token[0] = '\0';
        if (access == RF_SHEETS_ACCESS_SERVICE_ACCOUNT) {
            rv = rf_gauth_token(c->gauth, scope, token, sizeof(token), &last);
            if (rv != RF_OK && rv != RF_ENET) {
                rf_gerror_set(e, last.code, last.http_status, last.google_status, "%s",
                              last.message);
                goto out;
            }
            if (rv == RF_ENET) {
                last_reason =
                    strcmp(last.code, "rate_limited") == 0 ? "rate_limited" : "unavailable";
                goto retry;
            }
        }
        curl_err[0] = '\0';
        rc = http_once(c, url, token[0] != '\0' ? token : NULL, json_body, follow_redirects, resp,
                       &x, curl_err);
        memset(token, 0, sizeof(token));
        if (x.body.too_big) {
            rf_gerror_set(e, "range_too_large", 0, NULL,
                          "Google's answer for '%s' is larger than %lld bytes: read a smaller "
                          "range",
                          ctx != NULL && ctx->range != NULL ? ctx->range : "",
                          (long long)c->cfg.max_response_bytes);
            rv = RF_ETOOBIG;
            goto out;
        }
        if (rc == CURLE_OUT_OF_MEMORY) {
            rv = RF_ENOMEM;
            goto out;
        }
        if (rc != CURLE_OK) {
            rf_gerror_set(&last, "service_unavailable", 0, NULL,
                          "could not reach Google Sheets: %s",
                          curl_err[0] != '\0' ? curl_err : curl_easy_strerror(rc));
            last_reason = "unavailable";
            goto retry;
        }
        if (resp->status >= 200 && resp->status < 300) {
            rv = RF_OK;
            goto out;
        }
        if (resp->status == 401 && access == RF_SHEETS_ACCESS_SERVICE_ACCOUNT && !refreshed) {
            /* A token revoked before its time: one fresh token, at once. */
            rf_gauth_invalidate(c->gauth, scope);
            refreshed = true;
            continue;
        }
        rv = rf_sheets_map_error(resp->status, resp->body, resp->len, ctx, &last);
        if (resp->status != 429 && resp->status < 500) {
            *e = last;
            goto out;
        }
        last_reason = resp->status == 429 ? "rate_limited" : "unavailable";
    retry:
        if (attempt >= c->cfg.max_retries) {
            break;
        }
        attempt++;
        delay = c->cfg.backoff_initial_ms;
        for (int i = 1; i < attempt && delay < c->cfg.backoff_max_ms; i++) {
            delay *= 2;
        }
        if (delay > c->cfg.backoff_max_ms) {
            delay = c->cfg.backoff_max_ms;
        }
        delay = jitter(delay);
        if (x.retry_after_ms > delay && strcmp(last_reason, "rate_limited") == 0) {
            delay = x.retry_after_ms;
        }
        rf_warn("sheets: %s (%s); retry %d of %lld in %lld ms", last.code, last_reason, attempt,
                (long long)c->cfg.max_retries, (long long)delay);
        if (!wait_for(hooks, last_reason, delay, attempt)) {
            goto canceled;
        }
    }
    /* Every try failed with something worth retrying. */
    rf_gerror_set(e, last.code[0] != '\0' ? last.code : "service_unavailable", last.http_status,
                  last.google_status, "%s (gave up after %d tries)", last.message, attempt + 1);
    rv = strcmp(e->code, "rate_limited") == 0 || strcmp(e->code, "service_unavailable") == 0
             ? RF_ENET
             : RF_EINVAL;
    goto out;
canceled:
    rf_gerror_set(e, "canceled", 0, NULL, "stopped while waiting to retry Google Sheets");
    rv = RF_ECANCELED;
out:
    if (rv != RF_OK) {
        rf_sheets_response_clear(resp);
    }
    free(full_url);
    return rv;
}

/* ---- answers to cell tables ---- */

static rf_err
table_push(rf_csv_table *t, rf_csv_record *rec)
{
    if (t->n == t->cap) {
        size_t cap = t->cap == 0 ? 64 : t->cap * 2;
        rf_csv_record *grown = realloc(t->recs, cap * sizeof(*grown));
        if (grown == NULL) {
            return RF_ENOMEM;
        }
        t->recs = grown;
        t->cap = cap;
    }
    t->recs[t->n++] = *rec;
    memset(rec, 0, sizeof(*rec));
    return RF_OK;
}

static void
record_clear(rf_csv_record *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->cells[i]);
    }
    free(r->cells);
    memset(r, 0, sizeof(*r));
}

/* A cell of a values answer as text. FORMATTED_VALUE sends strings; numbers
 * and booleans are accepted as the other render options send them. NULL on
 * allocation failure or for a value that is not a cell (*bad set). */
static char *
cell_text(json_t *v, bool *bad)
{
    char buf[64];

    switch (json_typeof(v)) {
    case JSON_STRING:
        return strndup(json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return strdup(buf);
    case JSON_REAL:
        snprintf(buf, sizeof(buf), "%.15g", json_real_value(v));
        return strdup(buf);
    case JSON_TRUE:
        return strdup("TRUE");
    case JSON_FALSE:
        return strdup("FALSE");
    case JSON_NULL:
        return strdup("");
    default:
        *bad = true;
        return NULL;
    }
}

static void
values_init(rf_sheet_values *out, const rf_a1_range *req)
{
    memset(out, 0, sizeof(*out));
    out->row_start = req->row_start > 0 ? req->row_start : 1;
    out->col_start = req->col_start > 0 ? req->col_start : 1;
    snprintf(out->sheet, sizeof(out->sheet), "%s", req->sheet);
    if (rf_a1_format(req, out->range, sizeof(out->range)) != RF_OK) {
        out->range[0] = '\0';
    }
}

rf_err
rf_sheets_values_parse(const char *json, size_t len, const rf_a1_range *req, size_t max_records,
                       rf_sheet_values *out, rf_gerror *e)
{
    json_error_t jerr;
    json_t *root, *values, *row;
    const char *echo, *dim;
    rf_csv_record rec = {0};
    size_t i;
    rf_err rv = RF_OK;

    values_init(out, req);
    root = json_loadb(json != NULL ? json : "", len, 0, &jerr);
    if (!json_is_object(root)) {
        rf_gerror_set(e, "sheet_data_invalid", 200, NULL,
                      "Google Sheets sent an answer that is not a JSON object (%s)", jerr.text);
        rv = RF_EINVAL;
        goto out;
    }
    echo = json_string_value(json_object_get(root, "range"));
    if (echo != NULL && strlen(echo) < sizeof(out->range)) {
        snprintf(out->range, sizeof(out->range), "%s", echo);
    }
    dim = json_string_value(json_object_get(root, "majorDimension"));
    if (dim != NULL && strcmp(dim, "ROWS") != 0) {
        rf_gerror_set(e, "sheet_data_invalid", 200, NULL,
                      "Google Sheets answered with majorDimension %.20s, not ROWS", dim);
        rv = RF_EINVAL;
        goto out;
    }
    values = json_object_get(root, "values");
    if (values == NULL) {
        goto out; /* an empty range: Google leaves "values" out */
    }
    if (!json_is_array(values)) {
        rf_gerror_set(e, "sheet_data_invalid", 200, NULL,
                      "Google Sheets answered with \"values\" that is not an array");
        rv = RF_EINVAL;
        goto out;
    }
    json_array_foreach(values, i, row)
    {
        size_t n;
        bool bad = false;

        if (out->table.n >= max_records) {
            out->truncated = true;
            break;
        }
        if (!json_is_array(row)) {
            rf_gerror_set(e, "sheet_data_invalid", 200, NULL,
                          "Google Sheets answered with row %zu that is not an array", i + 1);
            rv = RF_EINVAL;
            goto out;
        }
        n = json_array_size(row);
        if (n > RF_SHEETS_MAX_COLS) {
            n = RF_SHEETS_MAX_COLS;
        }
        if (n > 0) {
            rec.cells = calloc(n, sizeof(*rec.cells));
            if (rec.cells == NULL) {
                rv = RF_ENOMEM;
                goto out;
            }
        }
        for (size_t j = 0; j < n; j++) {
            rec.cells[j] = cell_text(json_array_get(row, j), &bad);
            if (rec.cells[j] == NULL) {
                rec.n = j;
                if (bad) {
                    rf_gerror_set(e, "sheet_data_invalid", 200, NULL,
                                  "Google Sheets answered with a cell at row %zu that is not a "
                                  "value",
                                  i + 1);
                }
                rv = bad ? RF_EINVAL : RF_ENOMEM;
                goto out;
            }
        }
        rec.n = n;
        rv = table_push(&out->table, &rec);
        if (rv != RF_OK) {
            goto out;
        }
    }
out:
    record_clear(&rec);
    json_decref(root);
    if (rv != RF_OK) {
        rf_csv_table_free(&out->table);
        if (rv == RF_ENOMEM) {
            rf_gerror_set(e, "internal_error", 0, NULL, "out of memory reading the sheet");
        }
    }
    return rv;
}

static bool
record_empty(const rf_csv_record *r)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->cells[i][0] != '\0') {
            return false;
        }
    }
    return true;
}

rf_err
rf_sheets_csv_values(const char *csv, size_t len, const rf_a1_range *req, size_t max_records,
                     rf_sheet_values *out, rf_gerror *e)
{
    rf_csv_limits lim = {
        .max_field_bytes = CSV_CELL_MAX, .max_records = RF_A1_MAX_ROW, .max_cols = RF_A1_MAX_COL};
    rf_csv_table all = {0};
    char err[256] = "";
    size_t first, last;
    rf_err rv;

    values_init(out, req);
    rv = rf_csv_parse(csv, len, &lim, &all, err, sizeof(err));
    if (rv != RF_OK) {
        rf_gerror_set(e, rv == RF_ENOMEM ? "internal_error" : "sheet_data_invalid", 200, NULL,
                      "the sheet's CSV export could not be read: %s", err);
        goto out;
    }
    first = out->row_start - 1;
    last = req->row_end != 0 && req->row_end < all.n ? req->row_end : all.n;
    for (size_t r = first; r < last; r++) {
        rf_csv_record *src = &all.recs[r];
        rf_csv_record rec = {0};
        size_t c0 = out->col_start - 1;
        size_t c1 = req->col_end != 0 && req->col_end < src->n ? req->col_end : src->n;

        if (c1 > c0 && c1 - c0 > RF_SHEETS_MAX_COLS) {
            c1 = c0 + RF_SHEETS_MAX_COLS;
        }
        while (c1 > c0 && src->cells[c1 - 1][0] == '\0') {
            c1--; /* trailing empty cells, as Google's JSON leaves them out */
        }
        if (c1 > c0) {
            rec.cells = calloc(c1 - c0, sizeof(*rec.cells));
            if (rec.cells == NULL) {
                rv = RF_ENOMEM;
                goto out;
            }
            for (size_t c = c0; c < c1; c++) {
                rec.cells[rec.n++] = src->cells[c];
                src->cells[c] = NULL; /* moved */
            }
        }
        rv = table_push(&out->table, &rec);
        if (rv != RF_OK) {
            record_clear(&rec);
            goto out;
        }
    }
    while (out->table.n > 0 && record_empty(&out->table.recs[out->table.n - 1])) {
        record_clear(&out->table.recs[--out->table.n]);
    }
    if (out->table.n > max_records) {
        out->truncated = true;
        while (out->table.n > max_records) {
            record_clear(&out->table.recs[--out->table.n]);
        }
    }
out:
    rf_csv_table_free(&all);
    if (rv != RF_OK) {
        rf_csv_table_free(&out->table);
    }
    return rv;
}

/* ---- reading a range ---- */

static bool
looks_like_html(const rf_sheets_response *r)
{
    const char *p = r->body != NULL ? r->body : "";

    if (strncasecmp(r->content_type, "text/html", 9) == 0) {
        return true;
    }
    while (isspace((unsigned char)*p)) {
        p++;
    }
    return strncasecmp(p, "<!doctype html", 14) == 0 || strncasecmp(p, "<html", 5) == 0;
}

rf_err
rf_sheets_fetch(rf_sheets_client *c, const char *sheet_id, const char *range, const char *gid,
                const rf_sheets_hooks *hooks, rf_sheet_values *out, rf_gerror *e)
{
    char id[RF_SHEETS_ID_MAX], url_gid[RF_SHEETS_GID_MAX], text[RF_A1_TEXT_MAX], why[256] = "";
    rf_a1_range req;
    rf_sheets_response resp = {0};
    rf_sheets_errctx ctx;
    char *url = NULL, *esc = NULL;
    int64_t t0 = rf_mono_ms();
    size_t max_records = (size_t)c->cfg.max_rows + 1;
    int n = -1;
    rf_err rv;

    memset(out, 0, sizeof(*out));
    rv = rf_sheets_parse_id(sheet_id, id, url_gid, e);
    if (rv != RF_OK) {
        goto out;
    }
    if (gid != NULL && gid[0] != '\0') {
        if (strspn(gid, "0123456789") != strlen(gid) || strlen(gid) >= sizeof(url_gid)) {
            rf_gerror_set(e, "invalid_sheet_id", 0, NULL,
                          "gid must be the digits after 'gid=' in the sheet's URL");
            rv = RF_EINVAL;
            goto out;
        }
        snprintf(url_gid, sizeof(url_gid), "%s", gid);
    }
    if (range == NULL || range[0] == '\0') {
        range = RF_SHEETS_DEFAULT_RANGE;
    }
    rv = rf_a1_parse(range, &req, why, sizeof(why));
    if (rv == RF_OK) {
        rv = rf_a1_format(&req, text, sizeof(text));
        if (rv != RF_OK) {
            snprintf(why, sizeof(why), "range is too long");
            rv = RF_EINVAL;
        }
    }
    if (rv != RF_OK) {
        rf_gerror_set(e, "invalid_range", 0, NULL, "range '%.200s': %s", range, why);
        goto out;
    }
    rv = rf_a1_check_rows(&req, (uint32_t)c->cfg.max_rows, why, sizeof(why));
    if (rv != RF_OK) {
        rf_gerror_set(e, "range_too_large", 0, NULL, "range '%s': %s", text, why);
        goto out;
    }
    ctx = (rf_sheets_errctx){.sheet_id = id,
                             .range = text,
                             .access = c->access,
                             .client_email = rf_sheets_client_email(c),
                             .write = false};
    switch (c->access) {
    case RF_SHEETS_ACCESS_SERVICE_ACCOUNT:
    case RF_SHEETS_ACCESS_API_KEY:
        esc = curl_easy_escape(NULL, text, 0);
        if (esc != NULL) {
            n = asprintf(&url,
                         "%s/v4/spreadsheets/%s/values/%s"
                         "?majorDimension=ROWS&valueRenderOption=FORMATTED_VALUE",
                         c->cfg.api_base, id, esc);
        }
        if (n < 0) {
            url = NULL;
            rv = RF_ENOMEM;
            goto out;
        }
        rv = rf_sheets_request(c, c->access, RF_GAUTH_SCOPE_READ, RF_SHEETS_QUOTA_READ, url, NULL,
                               false, hooks, &ctx, &resp, e);
        if (rv != RF_OK) {
            goto out;
        }
        rv = rf_sheets_values_parse(resp.body, resp.len, &req, max_records, out, e);
        break;
    case RF_SHEETS_ACCESS_CSV_EXPORT:
        if (url_gid[0] != '\0') {
            n = asprintf(&url, "%s/spreadsheets/d/%s/export?format=csv&gid=%s",
                         c->cfg.csv_export_base, id, url_gid);
        } else if (req.sheet[0] != '\0') {
            esc = curl_easy_escape(NULL, req.sheet, 0);
            if (esc != NULL) {
                n = asprintf(&url, "%s/spreadsheets/d/%s/export?format=csv&sheet=%s",
                             c->cfg.csv_export_base, id, esc);
            }
        } else {
            n = asprintf(&url, "%s/spreadsheets/d/%s/export?format=csv", c->cfg.csv_export_base,
                         id);
        }
        if (n < 0) {
            url = NULL;
            rv = RF_ENOMEM;
            goto out;
        }
        rv = rf_sheets_request(c, c->access, NULL, RF_SHEETS_QUOTA_READ, url, NULL, true, hooks,
                               &ctx, &resp, e);
        if (rv != RF_OK) {
            goto out;
        }
        if (looks_like_html(&resp)) {
            rf_sheets_map_error(403, NULL, 0, &ctx, e);
            rv = RF_EINVAL;
            goto out;
        }
        rv = rf_sheets_csv_values(resp.body, resp.len, &req, max_records, out, e);
        if (rv == RF_OK) {
            snprintf(out->range, sizeof(out->range), "%s", text);
        }
        break;
    case RF_SHEETS_ACCESS_NONE:
        rf_gerror_set(e, "invalid_credentials", 0, NULL,
                      "no way to read Google Sheets is configured: set sheets_api_key or "
                      "sheets_credentials_file, or enable sheets_csv_export for sheets shared "
                      "by link");
        rv = RF_EINVAL;
        goto out;
    }
    out->access = c->access;
    out->elapsed_ms = rf_mono_ms() - t0;
out:
    if (rv != RF_OK) {
        rf_sheet_values_clear(out);
    }
    rf_sheets_response_clear(&resp);
    curl_free(esc);
    free(url);
    return rv;
}

rf_err
rf_sheet_values_to_rows(const rf_sheet_values *v, rf_rows *out, bool *had_header)
{
    static char empty[] = "";
    /* Pad each record on the left so that cell k is the sheet's column k + 1
     * for the letter mapping; past RF_F_COUNT columns no guide column is left
     * in the range, so more padding would change nothing. */
    size_t col0 = v->col_start > 0 ? v->col_start - 1 : 0;
    size_t pad = col0 < RF_F_COUNT ? col0 : RF_F_COUNT;
    rf_csv_table tmp = {0};
    rf_err rv = RF_OK;

    memset(out, 0, sizeof(*out));
    if (v->table.n > 0) {
        tmp.recs = calloc(v->table.n, sizeof(*tmp.recs));
        if (tmp.recs == NULL) {
            return RF_ENOMEM;
        }
        tmp.cap = v->table.n;
    }
    for (size_t r = 0; r < v->table.n; r++) {
        const rf_csv_record *src = &v->table.recs[r];
        rf_csv_record *dst = &tmp.recs[r];

        dst->cells = malloc((pad + src->n + 1) * sizeof(*dst->cells));
        if (dst->cells == NULL) {
            rv = RF_ENOMEM;
            goto out;
        }
        tmp.n++;
        for (size_t k = 0; k < pad; k++) {
            dst->cells[k] = empty;
        }
        for (size_t k = 0; k < src->n; k++) {
            dst->cells[pad + k] = src->cells[k]; /* borrowed: rf_csv_to_rows only reads */
        }
        dst->n = pad + src->n;
    }
    rv = rf_csv_to_rows(&tmp, out, had_header);
    if (rv != RF_OK) {
        goto out;
    }
    for (size_t i = 0; i < out->n; i++) {
        out->rows[i].row_number += v->row_start - 1;
    }
out:
    for (size_t r = 0; r < tmp.n; r++) {
        free(tmp.recs[r].cells); /* the pointer arrays only */
    }
    free(tmp.recs);
    return rv;
}

void
rf_sheet_values_clear(rf_sheet_values *v)
{
    if (v == NULL) {
        return;
    }
    rf_csv_table_free(&v->table);
    memset(v, 0, sizeof(*v));
}

rf_err
rf_sheets_read_rows(rf_sheets_client *c, const char *sheet_id, const char *range, const char *gid,
                    const rf_sheets_hooks *hooks, rf_rows *out, bool *had_header, rf_gerror *e)
{
    rf_sheet_values v;
    rf_err rv;

    memset(out, 0, sizeof(*out));
    rv = rf_sheets_fetch(c, sheet_id, range, gid, hooks, &v, e);
    if (rv != RF_OK) {
        goto out;
    }
    if (v.truncated) {
        rf_gerror_set(e, "range_too_large", 0, NULL,
                      "the range '%s' holds more than %lld data rows, the limit of one job: give "
                      "a bounded range (such as A1:J%lld) or split the sheet",
                      v.range, (long long)c->cfg.max_rows, (long long)c->cfg.max_rows + 1);
        rv = RF_ETOOBIG;
        goto out;
    }
    rv = rf_sheet_values_to_rows(&v, out, had_header);
    if (rv != RF_OK) {
        rf_gerror_set(e, "internal_error", 0, NULL, "out of memory reading the sheet");
        goto out;
    }
    if (out->n > (size_t)c->cfg.max_rows) {
        rf_gerror_set(e, "range_too_large", 0, NULL,
                      "the range '%s' holds %zu data rows, more than the limit of %lld: split "
                      "the sheet",
                      v.range, out->n, (long long)c->cfg.max_rows);
        rv = RF_ETOOBIG;
        goto out;
    }
    if (out->n == 0) {
        rf_gerror_set(e, "sheet_empty", 0, NULL,
                      "the range '%s' has no data rows: check the range and that the sheet has "
                      "rows below its header",
                      v.range);
        rv = RF_EINVAL;
        goto out;
    }
out:
    if (rv != RF_OK) {
        rf_rows_free(out);
    }
    rf_sheet_values_clear(&v);
    return rv;
}
