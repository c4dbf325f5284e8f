/* rfctl's HTTP transport over libcurl. */
#include "cli_http.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "rf_util.h"

#define BODY_MAX ((size_t)64 << 20)
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 8000
#define RETRY_AFTER_MAX_S 60
#define URL_MAX 4096

struct rf_cli_http {
    CURL *curl;
    char base[URL_MAX];
    char *auth_header; /* "Authorization: Bearer ..." or NULL */
    long timeout_ms;
    int retries;
    bool verbose;
};

typedef struct sink {
    char *buf;
    size_t len;
    size_t cap;
    bool too_big;
} sink;

typedef struct hdrs {
    char cid[96];
    long retry_after_s;
    long rl_remaining;
    long rl_reset_s;
} hdrs;

/* A non-negative integer header value, or -1. The coordinator sends
 * seconds; an HTTP-date Retry-After counts as "no hint". */
static long
header_long(const char *value)
{
    char *end = NULL;
    long v = strtol(value, &end, 10);

    return (end != value && *end == '\0' && v >= 0) ? v : -1;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    sink *s = userdata;
    size_t n = size * nmemb;

    if (s->len + n + 1 > BODY_MAX) {
        s->too_big = true;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    if (s->len + n + 1 > s->cap) {
        size_t ncap = s->cap > 0 ? s->cap : 4096;
        char *grown;
        while (ncap < s->len + n + 1) {
            ncap *= 2;
        }
        grown = realloc(s->buf, ncap);
        if (grown == NULL) {
            return 0;
        }
        s->buf = grown;
        s->cap = ncap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return n;
}

/* Copies the value of a "Name: value\r\n" header line, trimmed. */
static bool
header_value(const char *line, size_t n, const char *name, char *out, size_t out_len)
{
    size_t nl = strlen(name);
    size_t i, end;

    if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':') {
        return false;
    }
    i = nl + 1;
    while (i < n && (line[i] == ' ' || line[i] == '\t')) {
        i++;
    }
    end = n;
    while (end > i && isspace((unsigned char)line[end - 1])) {
        end--;
    }
    if (end - i >= out_len) {
        end = i + out_len - 1;
    }
    memcpy(out, line + i, end - i);
    out[end - i] = '\0';
    return true;
}

static size_t
on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    hdrs *h = userdata;
    size_t n = size * nmemb;
    char value[96];

    if (header_value(data, n, "X-Correlation-Id", value, sizeof(value))) {
        snprintf(h->cid, sizeof(h->cid), "%s", value);
    } else if (header_value(data, n, "Retry-After", value, sizeof(value))) {
        h->retry_after_s = header_long(value);
    } else if (header_value(data, n, "RateLimit-Remaining", value, sizeof(value))) {
        h->rl_remaining = header_long(value);
    } else if (header_value(data, n, "RateLimit-Reset", value, sizeof(value))) {
        h->rl_reset_s = header_long(value);
    }
    return n;
}

rf_err
rf_cli_http_new(const rf_cli_http_opts *opts, rf_cli_http **out)
{
    rf_cli_http *h = NULL;
    size_t n;
    rf_err rv = RF_OK;

    *out = NULL;
    if (opts->base_url == NULL || (strncasecmp(opts->base_url, "http://", 7) != 0 &&
                                   strncasecmp(opts->base_url, "https://", 8) != 0)) {
        return RF_EINVAL;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return RF_ENOMEM;
    }
    rv = rf_strlcpy(h->base, opts->base_url, sizeof(h->base));
    if (rv != RF_OK) {
        rv = RF_EINVAL;
        goto out;
    }
    /* Users paste the seeds' BASE_URL (".../api/v1"); the routes we build
     * carry their own prefix, so a trailing API prefix is dropped. */
    n = strlen(h->base);
    while (n > 0 && h->base[n - 1] == '/') {
        h->base[--n] = '\0';
    }
    if (n >= 7 && strcmp(h->base + n - 7, "/api/v1") == 0) {
        h->base[n - 7] = '\0';
    } else if (n >= 4 && strcmp(h->base + n - 4, "/api") == 0) {
        h->base[n - 4] = '\0';
    }
    if (opts->token != NULL && opts->token[0] != '\0') {
        size_t len = strlen(opts->token) + sizeof("Authorization: Bearer ");
        if (strpbrk(opts->token, "\r\n") != NULL) {
            rv = RF_EINVAL;
            goto out;
        }
        h->auth_header = malloc(len);
        if (h->auth_header == NULL) {
            rv = RF_ENOMEM;
            goto out;
        }
        snprintf(h->auth_header, len, "Authorization: Bearer %s", opts->token);
    }
    h->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 30000;
    h->retries = opts->retries >= 0 ? opts->retries : 3;
    h->verbose = opts->verbose;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        rv = RF_EIO;
        goto out;
    }
    h->curl = curl_easy_init();
    if (h->curl == NULL) {
        curl_global_cleanup();
        rv = RF_EIO;
        goto out;
    }
    *out = h;
    h = NULL;
out:
    if (h != NULL) {
        free(h->auth_header);
        free(h);
    }
    return rv;
}

void
rf_cli_http_free(rf_cli_http **hp)
{
    rf_cli_http *h;

    if (hp == NULL || *hp == NULL) {
        return;
    }
    h = *hp;
    if (h->curl != NULL) {
        curl_easy_cleanup(h->curl);
        curl_global_cleanup();
    }
    free(h->auth_header);
    free(h);
    *hp = NULL;
}

void
rf_cli_resp_clear(rf_cli_resp *r)
{
    if (r == NULL) {
        return;
    }
    json_decref(r->body);
    json_decref(r->error_detail);
    free(r->raw);
    memset(r, 0, sizeof(*r));
    r->retry_after_s = -1;
    r->ratelimit_remaining = -1;
    r->ratelimit_reset_s = -1;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Transport failures where the request cannot have reached the server. */
static bool
before_send(CURLcode cc)
{
    return cc == CURLE_COULDNT_RESOLVE_PROXY || cc == CURLE_COULDNT_RESOLVE_HOST ||
           cc == CURLE_COULDNT_CONNECT;
}

static const char *
str_field(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Fills the error fields from whichever error shape the body has, and
 * unwraps a {"success":true,"data":...} envelope. */
static void
decode_body(rf_cli_resp *r)
{
    const json_t *err;
    const char *code = NULL, *msg = NULL;
    json_t *detail = NULL;

    if (r->body != NULL && json_is_object(r->body) && r->status < 400 &&
        json_is_true(json_object_get(r->body, "success")) &&
        json_object_get(r->body, "data") != NULL) {
        json_t *data = json_incref(json_object_get(r->body, "data"));
        json_decref(r->body);
        r->body = data;
    }
    if (r->status < 400) {
        return;
    }
    if (r->body != NULL && json_is_object(r->body)) {
        err = json_object_get(r->body, "error");
        if (str_field(r->body, "error_code") != NULL) {
            code = str_field(r->body, "error_code");
            msg = str_field(r->body, "error_message");
            detail = json_object_get(r->body, "detail");
        } else if (json_is_object(err)) {
            code = str_field(err, "code");
            msg = str_field(err, "message");
            detail = json_object_get(err, "detail");
        }
    }
    snprintf(r->error_code, sizeof(r->error_code), "%s", code != NULL ? code : "http_error");
    if (msg != NULL) {
        snprintf(r->error_message, sizeof(r->error_message), "%s", msg);
    } else if (r->raw != NULL && r->raw_len > 0) {
        snprintf(r->error_message, sizeof(r->error_message), "HTTP %ld: %.200s", r->status, r->raw);
    } else {
        snprintf(r->error_message, sizeof(r->error_message), "HTTP %ld with an empty body",
                 r->status);
    }
    if (detail != NULL && !json_is_null(detail)) {
        r->error_detail = json_incref(detail);
    }
}

static long
backoff_ms(int attempt, long retry_after_s)
{
    long ms = BACKOFF_FIRST_MS;

    if (retry_after_s >= 0) {
        return retry_after_s * 1000;
    }
    for (int i = 1; i < attempt && ms < BACKOFF_MAX_MS; i++) {
        ms *= 2;
    }
    if (ms > BACKOFF_MAX_MS) {
        ms = BACKOFF_MAX_MS;
    }
    /* Up to 25 % jitter so that many clients retrying together spread out. */
    return ms + (long)((uint64_t)rf_mono_ns() % (uint64_t)(ms / 4 + 1));
}

static bool
retry_status(long status, bool repeatable)
{
    if (status == 429 || status == 503) {
        return true;
    }
    return repeatable && (status == 502 || status == 504);
}

/* One attempt. Returns the curl result; fills s and hd. */
static CURLcode
attempt(rf_cli_http *h, const char *method, const char *url, const char *body,
        struct curl_slist *headers, sink *s, hdrs *hd, char *errbuf, long *status)
{
    CURLcode cc;

    curl_easy_reset(h->curl);
    curl_easy_setopt(h->curl, CURLOPT_URL, url);
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, hd);
    curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, h->timeout_ms);
    curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS,
                     h->timeout_ms < 10000 ? h->timeout_ms : 10000L);
    curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h->curl, CURLOPT_USERAGENT, "rfctl/0.1");
    curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h->curl, CURLOPT_POST, 1L);
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body != NULL ? body : "");
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(body != NULL ? strlen(body) : 0));
        if (strcmp(method, "POST") != 0) {
            curl_easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST, method);
        }
    }
    errbuf[0] = '\0';
    *status = 0;
    cc = curl_easy_perform(h->curl);
    if (cc == CURLE_OK) {
        curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, status);
    }
    return cc;
}

rf_err
rf_cli_http_do(rf_cli_http *h, const char *method, const char *path, const char *body,
               const char *idem_key, rf_cli_resp *out)
{
    char url[URL_MAX + 2048];
    char cid_header[128], idem_header[320];
    char errbuf[CURL_ERROR_SIZE];
    char cid[64];
    struct curl_slist *headers = NULL, *tmp;
    const char *fixed[5];
    bool repeatable = strcmp(method, "GET") == 0 || (idem_key != NULL && idem_key[0] != '\0');
    sink s = {0};
    hdrs hd;
    rf_err rv = RF_OK;

    memset(out, 0, sizeof(*out));
    out->retry_after_s = -1;
    out->ratelimit_remaining = -1;
    out->ratelimit_reset_s = -1;
    rv = rf_fmt(url, sizeof(url), "%s%s", h->base, path);
    if (rv != RF_OK) {
        return rv;
    }
    /* One correlation id for all attempts of this request, so the server's
     * log shows retries as the same logical call. */
    rf_new_id("rfctl_", cid, sizeof(cid));
    snprintf(cid_header, sizeof(cid_header), "X-Correlation-Id: %s", cid);
    /* "Expect:" stops curl from waiting for 100-continue on larger bodies. */
    fixed[0] = "Accept: application/json";
    fixed[1] = "Content-Type: application/json";
    fixed[2] = "Expect:";
    fixed[3] = cid_header;
    fixed[4] = h->auth_header;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (fixed[i] == NULL) {
            continue;
        }
        tmp = curl_slist_append(headers, fixed[i]);
        if (tmp == NULL) {
            rv = RF_ENOMEM;
            goto out;
        }
        headers = tmp;
    }
    if (idem_key != NULL && idem_key[0] != '\0') {
        if (strpbrk(idem_key, "\r\n") != NULL) {
            rv = RF_EINVAL;
            goto out;
        }
        rv = rf_fmt(idem_header, sizeof(idem_header), "Idempotency-Key: %s", idem_key);
        if (rv != RF_OK) {
            goto out;
        }
        tmp = curl_slist_append(headers, idem_header);
        if (tmp == NULL) {
            rv = RF_ENOMEM;
            goto out;
        }
        headers = tmp;
    }

    for (int n = 1;; n++) {
        long status = 0;
        CURLcode cc;
        bool again;

        free(s.buf);
        memset(&s, 0, sizeof(s));
        memset(&hd, 0, sizeof(hd));
        hd.retry_after_s = -1;
        hd.rl_remaining = -1;
        hd.rl_reset_s = -1;
        cc = attempt(h, method, url, body, headers, &s, &hd, errbuf, &status);
        out->attempts = n;
        if (s.too_big) {
            rv = RF_ETOOBIG;
            goto out;
        }
        if (cc == CURLE_OK) {
            again = retry_status(status, repeatable) && hd.retry_after_s <= RETRY_AFTER_MAX_S;
            if (h->verbose) {
                fprintf(stderr, "rfctl: %s %s -> %ld (cid %s, attempt %d)\n", method, url, status,
                        hd.cid[0] != '\0' ? hd.cid : cid, n);
            }
        } else {
            snprintf(out->net_error, sizeof(out->net_error), "%s %.400s: %s%s%.300s%s", method, url,
                     curl_easy_strerror(cc), errbuf[0] != '\0' ? " (" : "", errbuf,
                     errbuf[0] != '\0' ? ")" : "");
            again = repeatable || before_send(cc);
            if (h->verbose) {
                fprintf(stderr, "rfctl: %s (attempt %d)\n", out->net_error, n);
            }
        }
        if (!again || n > h->retries) {
            out->status = cc == CURLE_OK ? status : 0;
            break;
        }
        sleep_ms(backoff_ms(n, cc == CURLE_OK ? hd.retry_after_s : -1));
    }
    if (out->status == 0) {
        rv = RF_ENET;
        goto out;
    }
    out->net_error[0] = '\0';
    snprintf(out->correlation_id, sizeof(out->correlation_id), "%s",
             hd.cid[0] != '\0' ? hd.cid : cid);
    out->retry_after_s = hd.retry_after_s;
    out->ratelimit_remaining = hd.rl_remaining;
    out->ratelimit_reset_s = hd.rl_reset_s;
    out->raw = s.buf;
    out->raw_len = s.len;
    s.buf = NULL;
    if (out->raw != NULL && out->raw_len > 0) {
        out->body = json_loadb(out->raw, out->raw_len, 0, NULL);
    }
    decode_body(out);
out:
    free(s.buf);
    curl_slist_free_all(headers);
    return rv;
}

static bool
unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static rf_err
escape_into(const char *value, char *buf, size_t len, size_t *pos)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
        if (unreserved(*p)) {
            if (*pos + 1 >= len) {
                return RF_ETOOBIG;
            }
            buf[(*pos)++] = (char)*p;
        } else {
            if (*pos + 3 >= len) {
                return RF_ETOOBIG;
            }
            buf[(*pos)++] = '%';
            buf[(*pos)++] = hex[*p >> 4];
            buf[(*pos)++] = hex[*p & 15];
        }
    }
    buf[*pos] = '\0';
    return RF_OK;
}

rf_err
rf_cli_query_add(char *buf, size_t len, const char *name, const char *value)
{
    size_t pos = strlen(buf);
    rf_err rv;

    if (pos + strlen(name) + 2 >= len) {
        return RF_ETOOBIG;
    }
    buf[pos++] = strchr(buf, '?') != NULL ? '&' : '?';
    buf[pos] = '\0';
    rv = escape_into(name, buf, len, &pos);
    if (rv != RF_OK) {
        return rv;
    }
    if (pos + 1 >= len) {
        return RF_ETOOBIG;
    }
    buf[pos++] = '=';
    buf[pos] = '\0';
    return escape_into(value, buf, len, &pos);
}

rf_err
rf_cli_path_escape(const char *segment, char *buf, size_t len)
{
    size_t pos = 0;

    if (len == 0) {
        return RF_ETOOBIG;
    }
    buf[0] = '\0';
    return escape_into(segment, buf, len, &pos);
}
