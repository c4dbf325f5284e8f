/* Webhook signing (Standard Webhooks), delivery workers over libcurl, and
 * an in-memory delivery store. */
#include "webhooks.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "rf_log.h"
#include "rf_util.h"

/* ---- signing ---- */

void
rf_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len, unsigned char mac[32])
{
    unsigned int mac_len = 32;
    static const unsigned char empty = 0;

    /* OpenSSL refuses a NULL key pointer even with length 0. */
    HMAC(EVP_sha256(), key != NULL ? key : &empty, (int)key_len,
         data != NULL ? data : (const void *)&empty, len, mac, &mac_len);
}

void
rf_hmac_sha256_hex(const void *key, size_t key_len, const void *data, size_t len, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char mac[32];

    rf_hmac_sha256(key, key_len, data, len, mac);
    for (size_t i = 0; i < 32; i++) {
        hex[2 * i] = digits[mac[i] >> 4];
        hex[2 * i + 1] = digits[mac[i] & 15];
    }
    hex[64] = '\0';
}

static rf_err
b64_encode(const unsigned char *in, size_t n, char *out, size_t out_len)
{
    size_t need = 4 * ((n + 2) / 3) + 1;

    if (out_len < need) {
        return RF_ETOOBIG;
    }
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    return RF_OK;
}

static rf_err
secret_from_key(const unsigned char *key, size_t n, char *out, size_t len)
{
    if (len < 7) {
        return RF_ETOOBIG;
    }
    memcpy(out, "whsec_", 6);
    return b64_encode(key, n, out + 6, len - 6);
}

rf_err
rf_webhook_secret_new(char *out, size_t len)
{
    unsigned char key[32];
    size_t got = 0;

    while (got < sizeof(key)) {
        ssize_t r = getrandom(key + got, sizeof(key) - got, 0);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return RF_EIO;
        }
        got += (size_t)r;
    }
    rf_err rv = secret_from_key(key, sizeof(key), out, len);
    OPENSSL_cleanse(key, sizeof(key));
    return rv;
}

rf_err
rf_webhook_secret_derive(const void *master, size_t master_len, const char *tenant, char *out,
                         size_t len)
{
    static const char label[] = "rf-webhook-secret:";
    unsigned char key[32];
    char *msg;
    size_t tl;
    rf_err rv;

    if (master == NULL || master_len < 16 || tenant == NULL) {
        return RF_EINVAL;
    }
    tl = strlen(tenant);
    msg = malloc(sizeof(label) + tl);
    if (msg == NULL) {
        return RF_ENOMEM;
    }
    memcpy(msg, label, sizeof(label) - 1);
    memcpy(msg + sizeof(label) - 1, tenant, tl);
    rf_hmac_sha256(master, master_len, msg, sizeof(label) - 1 + tl, key);
    free(msg);
    rv = secret_from_key(key, sizeof(key), out, len);
    OPENSSL_cleanse(key, sizeof(key));
    return rv;
}

/* Decodes standard base64 (with padding) into out; *n gets the length. */
static rf_err
b64_decode(const char *in, unsigned char *out, size_t out_cap, size_t *n)
{
    size_t len = strlen(in);
    unsigned char tmp[128];
    int got;
    size_t pad = 0;

    if (len == 0 || len % 4 != 0 || len / 4 * 3 > sizeof(tmp)) {
        return RF_EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (!isalnum(c) && c != '+' && c != '/' && !(c == '=' && i >= len - 2)) {
            return RF_EINVAL;
        }
    }
    if (in[len - 1] == '=') {
        pad++;
    }
    if (in[len - 2] == '=') {
        pad++;
    }
    got = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)len);
    if (got < 0 || (size_t)got < pad || (size_t)got - pad > out_cap) {
        return RF_EINVAL;
    }
    *n = (size_t)got - pad;
    memcpy(out, tmp, *n);
    OPENSSL_cleanse(tmp, sizeof(tmp));
    return RF_OK;
}

rf_err
rf_webhook_secret_key(const char *secret, unsigned char key[64], size_t *key_len)
{
    rf_err rv;

    if (secret == NULL) {
        return RF_EINVAL;
    }
    if (strncmp(secret, "whsec_", 6) == 0) {
        secret += 6;
    }
    rv = b64_decode(secret, key, 64, key_len);
    if (rv != RF_OK) {
        return rv;
    }
    if (*key_len < 24 || *key_len > 64) {
        return RF_EINVAL;
    }
    return RF_OK;
}

/* HMAC over "{id}.{ts}.{body}" without concatenating the body. */
static rf_err
sign_raw(const unsigned char *key, size_t key_len, const char *msg_id, const char *ts,
         const char *body, size_t body_len, unsigned char mac[32])
{
    size_t il = strlen(msg_id), tl = strlen(ts);
    size_t total = il + 1 + tl + 1 + body_len;
    char *buf = malloc(total + 1);

    if (buf == NULL) {
        return RF_ENOMEM;
    }
    memcpy(buf, msg_id, il);
    buf[il] = '.';
    memcpy(buf + il + 1, ts, tl);
    buf[il + 1 + tl] = '.';
    if (body_len > 0) {
        memcpy(buf + il + 2 + tl, body, body_len);
    }
    rf_hmac_sha256(key, key_len, buf, total, mac);
    free(buf);
    return RF_OK;
}

rf_err
rf_webhook_sign(const char *secret, const char *msg_id, int64_t timestamp_s, const char *body,
                size_t body_len, char *out, size_t out_len)
{
    unsigned char key[64], mac[32];
    size_t key_len;
    char ts[24];
    rf_err rv;

    rv = rf_webhook_secret_key(secret, key, &key_len);
    if (rv != RF_OK) {
        return rv;
    }
    snprintf(ts, sizeof(ts), "%lld", (long long)timestamp_s);
    rv = sign_raw(key, key_len, msg_id, ts, body, body_len, mac);
    OPENSSL_cleanse(key, sizeof(key));
    if (rv != RF_OK) {
        return rv;
    }
    if (out_len < 4) {
        return RF_ETOOBIG;
    }
    memcpy(out, "v1,", 3);
    return b64_encode(mac, sizeof(mac), out + 3, out_len - 3);
}

rf_err
rf_webhook_verify(const char *secret, const char *msg_id, const char *timestamp, const char *body,
                  size_t body_len, const char *signature_header, int64_t now_s, int64_t tolerance_s)
{
    unsigned char key[64], mac[32];
    size_t key_len;
    char *end;
    long long ts;
    rf_err rv;
    bool ok = false;
    const char *p;

    if (msg_id == NULL || timestamp == NULL || signature_header == NULL) {
        return RF_EINVAL;
    }
    errno = 0;
    ts = strtoll(timestamp, &end, 10);
    if (errno != 0 || end == timestamp || *end != '\0') {
        return RF_EINVAL;
    }
    if (ts < now_s - tolerance_s || ts > now_s + tolerance_s) {
        return RF_ETIMEDOUT;
    }
    rv = rf_webhook_secret_key(secret, key, &key_len);
    if (rv != RF_OK) {
        return rv;
    }
    rv = sign_raw(key, key_len, msg_id, timestamp, body, body_len, mac);
    OPENSSL_cleanse(key, sizeof(key));
    if (rv != RF_OK) {
        return rv;
    }
    /* Space-separated list: "v1,<b64> v1,<b64>" during secret rotation. */
    p = signature_header;
    while (*p != '\0') {
        char entry[128];
        size_t n = 0;
        unsigned char got[64];
        size_t got_len;

        while (*p == ' ') {
            p++;
        }
        while (p[n] != '\0' && p[n] != ' ') {
            n++;
        }
        if (n > 3 && n < sizeof(entry) && strncmp(p, "v1,", 3) == 0) {
            memcpy(entry, p + 3, n - 3);
            entry[n - 3] = '\0';
            if (b64_decode(entry, got, sizeof(got), &got_len) == RF_OK && got_len == 32 &&
                CRYPTO_memcmp(got, mac, 32) == 0) {
                ok = true;
            }
        }
        p += n;
    }
    return ok ? RF_OK : RF_EINVAL;
}

/* ---- schedule and payload ---- */

void
rf_webhooks_config_defaults(rf_webhooks_config *cfg)
{
    static const int64_t sched[] = {
        0, 5000, 300000, 1800000, 7200000, 18000000, 36000000, 50400000, 72000000, 86400000,
    };

    memset(cfg, 0, sizeof(*cfg));
    memcpy(cfg->schedule_ms, sched, sizeof(sched));
    cfg->n_schedule = sizeof(sched) / sizeof(sched[0]);
    cfg->jitter = 0.2;
    cfg->max_age_ms = 0;
    cfg->timeout_ms = 15000;
    cfg->connect_timeout_ms = 5000;
    cfg->retry_after_max_ms = 86400000;
    cfg->claim_lease_ms = 60000;
    cfg->workers = 2;
    cfg->follow_redirects = false;
    rf_strlcpy(cfg->user_agent, "renderfarm-webhooks/1", sizeof(cfg->user_agent));
}

rf_err
rf_webhooks_parse_schedule(rf_webhooks_config *cfg, const char *text, char *err, size_t err_len)
{
    int64_t sched[RF_WEBHOOK_SCHEDULE_MAX];
    size_t n = 0;
    const char *p = text != NULL ? text : "";

    while (*p != '\0') {
        char *end;
        double v;
        int64_t mult = 1;

        while (*p == ',' || *p == ' ') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        errno = 0;
        v = strtod(p, &end);
        if (end == p || errno != 0 || v < 0 || !isfinite(v)) {
            rf_errf(err, err_len, "webhook schedule: bad delay at \"%s\"", p);
            return RF_EINVAL;
        }
        p = end;
        if (strncmp(p, "ms", 2) == 0) {
            p += 2;
        } else if (*p == 's') {
            mult = 1000;
            p++;
        } else if (*p == 'm') {
            mult = 60000;
            p++;
        } else if (*p == 'h') {
            mult = 3600000;
            p++;
        }
        if (*p != '\0' && *p != ',' && *p != ' ') {
            rf_errf(err, err_len, "webhook schedule: unknown unit at \"%s\"", p);
            return RF_EINVAL;
        }
        if (n >= RF_WEBHOOK_SCHEDULE_MAX) {
            rf_errf(err, err_len, "webhook schedule: more than %d attempts",
                    RF_WEBHOOK_SCHEDULE_MAX);
            return RF_ETOOBIG;
        }
        sched[n++] = (int64_t)llround(v * (double)mult);
    }
    if (n == 0) {
        rf_errf(err, err_len, "webhook schedule: empty");
        return RF_EINVAL;
    }
    memcpy(cfg->schedule_ms, sched, n * sizeof(sched[0]));
    cfg->n_schedule = n;
    return RF_OK;
}

int64_t
rf_webhooks_delay_ms(const rf_webhooks_config *cfg, int attempt, double u)
{
    double f;

    if (attempt < 0 || (size_t)attempt >= cfg->n_schedule) {
        return -1;
    }
    if (u < 0.0) {
        u = 0.0;
    }
    if (u >= 1.0) {
        u = 0.999999;
    }
    f = 1.0 + cfg->jitter * (2.0 * u - 1.0);
    return (int64_t)llround((double)cfg->schedule_ms[attempt] * f);
}

int64_t
rf_webhooks_retry_after_ms(const char *value, int64_t now_ms)
{
    const char *p;
    time_t t;

    if (value == NULL) {
        return -1;
    }
    while (*value == ' ' || *value == '\t') {
        value++;
    }
    if (*value == '\0') {
        return -1;
    }
    for (p = value; *p >= '0' && *p <= '9'; p++) {
    }
    if (p != value && (*p == '\0' || *p == '\r' || *p == '\n' || *p == ' ')) {
        long long s = strtoll(value, NULL, 10);
        if (s > 10LL * 365 * 86400) {
            s = 10LL * 365 * 86400;
        }
        return s * 1000;
    }
    t = curl_getdate(value, NULL);
    if (t == (time_t)-1) {
        return -1;
    }
    return (int64_t)t * 1000 > now_ms ? (int64_t)t * 1000 - now_ms : 0;
}

json_t *
rf_webhook_payload(const char *msg_id, const char *type, int64_t event_ms, const char *job_id,
                   const char *state, double percent_complete, int64_t items_completed,
                   int64_t items_failed, int64_t items_total, json_t *data)
{
    char ts[32];

    rf_time_rfc3339(event_ms, ts, sizeof(ts));
    return json_pack("{s:s, s:s, s:s, s:s, s:s?, s:f, s:I, s:I, s:I, s:O?}", "id", msg_id, "type",
                     type, "timestamp", ts, "job_id", job_id, "state", state, "percent_complete",
                     percent_complete, "items_completed", (json_int_t)items_completed,
                     "items_failed", (json_int_t)items_failed, "items_total",
                     (json_int_t)items_total, "data", data);
}

void
rf_webhook_delivery_clear(rf_webhook_delivery *d)
{
    if (d == NULL) {
        return;
    }
    free(d->body);
    memset(d, 0, sizeof(*d));
}

rf_err
rf_webhooks_make_delivery(const rf_webhooks_config *cfg, const char *job_id, const char *tenant,
                          const char *url, const char *event_type, json_t *payload, int64_t now_ms,
                          rf_webhook_delivery *d)
{
    const char *id = json_string_value(json_object_get(payload, "id"));

    memset(d, 0, sizeof(*d));
    if (id == NULL || job_id == NULL || tenant == NULL || url == NULL || event_type == NULL) {
        return RF_EINVAL;
    }
    if (rf_strlcpy(d->msg_id, id, sizeof(d->msg_id)) != RF_OK ||
        rf_strlcpy(d->job_id, job_id, sizeof(d->job_id)) != RF_OK ||
        rf_strlcpy(d->tenant, tenant, sizeof(d->tenant)) != RF_OK ||
        rf_strlcpy(d->url, url, sizeof(d->url)) != RF_OK ||
        rf_strlcpy(d->event_type, event_type, sizeof(d->event_type)) != RF_OK) {
        return RF_ETOOBIG;
    }
    d->body = json_dumps(payload, JSON_COMPACT);
    if (d->body == NULL) {
        return RF_ENOMEM;
    }
    d->created_ms = now_ms;
    d->next_attempt_ms = now_ms + (cfg->n_schedule > 0 ? cfg->schedule_ms[0] : 0);
    return RF_OK;
}

/* ---- in-memory store ---- */

typedef struct mem_entry {
    rf_webhook_delivery d;
    char state[16];
    int64_t claimed_until;
    rf_webhook_attempt *attempts;
    size_t n_attempts;
} mem_entry;

struct rf_webhook_memstore {
    pthread_mutex_t mu;
    mem_entry *v;
    size_t n, cap;
    char **disabled;
    size_t n_disabled;
};

rf_err
rf_webhook_memstore_new(rf_webhook_memstore **out)
{
    rf_webhook_memstore *ms = calloc(1, sizeof(*ms));

    *out = NULL;
    if (ms == NULL) {
        return RF_ENOMEM;
    }
    pthread_mutex_init(&ms->mu, NULL);
    *out = ms;
    return RF_OK;
}

void
rf_webhook_memstore_free(rf_webhook_memstore **msp)
{
    rf_webhook_memstore *ms;

    if (msp == NULL || *msp == NULL) {
        return;
    }
    ms = *msp;
    for (size_t i = 0; i < ms->n; i++) {
        rf_webhook_delivery_clear(&ms->v[i].d);
        free(ms->v[i].attempts);
    }
    for (size_t i = 0; i < ms->n_disabled; i++) {
        free(ms->disabled[i]);
    }
    free(ms->disabled);
    free(ms->v);
    pthread_mutex_destroy(&ms->mu);
    free(ms);
    *msp = NULL;
}

static bool
mem_disabled(rf_webhook_memstore *ms, const char *url)
{
    for (size_t i = 0; i < ms->n_disabled; i++) {
        if (strcmp(ms->disabled[i], url) == 0) {
            return true;
        }
    }
    return false;
}

static rf_err
mem_enqueue(void *ctx, rf_webhook_delivery *d)
{
    rf_webhook_memstore *ms = ctx;
    mem_entry *e;
    rf_err rv = RF_OK;

    pthread_mutex_lock(&ms->mu);
    if (ms->n == ms->cap) {
        size_t cap = ms->cap ? ms->cap * 2 : 16;
        mem_entry *v = realloc(ms->v, cap * sizeof(*v));
        if (v == NULL) {
            rv = RF_ENOMEM;
            goto out;
        }
        ms->v = v;
        ms->cap = cap;
    }
    e = &ms->v[ms->n];
    memset(e, 0, sizeof(*e));
    e->d = *d;
    e->d.body = strdup(d->body != NULL ? d->body : "");
    if (e->d.body == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    e->d.id = (int64_t)ms->n + 1;
    rf_strlcpy(e->state, mem_disabled(ms, d->url) ? "abandoned" : "pending", sizeof(e->state));
    d->id = e->d.id;
    ms->n++;
out:
    pthread_mutex_unlock(&ms->mu);
    return rv;
}

static rf_err
mem_claim(void *ctx, int64_t now_ms, int64_t lease_ms, rf_webhook_delivery *out,
          int64_t *next_due_ms)
{
    rf_webhook_memstore *ms = ctx;
    const char **heads = NULL;
    size_t n_heads = 0;
    mem_entry *best = NULL;
    int64_t next = -1;
    rf_err rv = RF_ENOTFOUND;

    pthread_mutex_lock(&ms->mu);
    heads = calloc(ms->n + 1, sizeof(*heads));
    if (heads == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < ms->n; i++) {
        mem_entry *e = &ms->v[i];
        bool later = false;

        if (strcmp(e->state, "pending") != 0) {
            continue;
        }
        for (size_t j = 0; j < n_heads; j++) {
            if (strcmp(heads[j], e->d.job_id) == 0) {
                later = true;
                break;
            }
        }
        if (later) {
            continue; /* an earlier event of this job is still pending */
        }
        heads[n_heads++] = e->d.job_id;
        if (e->claimed_until > now_ms) {
            continue;
        }
        if (e->d.next_attempt_ms <= now_ms) {
            if (best == NULL || e->d.next_attempt_ms < best->d.next_attempt_ms) {
                best = e;
            }
        } else if (next < 0 || e->d.next_attempt_ms < next) {
            next = e->d.next_attempt_ms;
        }
    }
    if (best != NULL) {
        best->claimed_until = now_ms + lease_ms;
        *out = best->d;
        out->body = strdup(best->d.body);
        if (out->body == NULL) {
            best->claimed_until = 0;
            memset(out, 0, sizeof(*out));
            rv = RF_ENOMEM;
            goto out;
        }
        rv = RF_OK;
    }
out:
    free(heads);
    if (next_due_ms != NULL) {
        *next_due_ms = next;
    }
    pthread_mutex_unlock(&ms->mu);
    return rv;
}

static mem_entry *
mem_find(rf_webhook_memstore *ms, int64_t id)
{
    if (id < 1 || (size_t)id > ms->n) {
        return NULL;
    }
    return &ms->v[id - 1];
}

static rf_err
mem_record(void *ctx, const rf_webhook_attempt *a)
{
    rf_webhook_memstore *ms = ctx;
    mem_entry *e;
    rf_webhook_attempt *v;
    rf_err rv = RF_OK;

    pthread_mutex_lock(&ms->mu);
    e = mem_find(ms, a->delivery_id);
    if (e == NULL) {
        rv = RF_ENOTFOUND;
        goto out;
    }
    v = realloc(e->attempts, (e->n_attempts + 1) * sizeof(*v));
    if (v == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    e->attempts = v;
    e->attempts[e->n_attempts++] = *a;
    e->d.attempts = a->attempt;
    e->claimed_until = 0;
    if (strcmp(a->outcome, "retry") == 0) {
        e->d.next_attempt_ms = a->next_attempt_ms;
    } else if (strcmp(a->outcome, "delivered") == 0) {
        rf_strlcpy(e->state, "delivered", sizeof(e->state));
    } else {
        rf_strlcpy(e->state, "abandoned", sizeof(e->state));
    }
out:
    pthread_mutex_unlock(&ms->mu);
    return rv;
}

static rf_err
mem_disable(void *ctx, const char *url, int64_t now_ms)
{
    rf_webhook_memstore *ms = ctx;
    char **v;
    rf_err rv = RF_OK;

    (void)now_ms;
    pthread_mutex_lock(&ms->mu);
    if (!mem_disabled(ms, url)) {
        v = realloc(ms->disabled, (ms->n_disabled + 1) * sizeof(*v));
        if (v == NULL) {
            rv = RF_ENOMEM;
            goto out;
        }
        ms->disabled = v;
        ms->disabled[ms->n_disabled] = strdup(url);
        if (ms->disabled[ms->n_disabled] == NULL) {
            rv = RF_ENOMEM;
            goto out;
        }
        ms->n_disabled++;
    }
    for (size_t i = 0; i < ms->n; i++) {
        if (strcmp(ms->v[i].state, "pending") == 0 && strcmp(ms->v[i].d.url, url) == 0 &&
            ms->v[i].claimed_until == 0) {
            rf_strlcpy(ms->v[i].state, "abandoned", sizeof(ms->v[i].state));
        }
    }
out:
    pthread_mutex_unlock(&ms->mu);
    return rv;
}

const rf_webhook_store_ops rf_webhook_memstore_ops = {
    .enqueue = mem_enqueue,
    .claim = mem_claim,
    .record = mem_record,
    .disable_endpoint = mem_disable,
};

rf_err
rf_webhook_memstore_state(rf_webhook_memstore *ms, int64_t id, char *state, int *attempts)
{
    mem_entry *e;
    rf_err rv = RF_OK;

    pthread_mutex_lock(&ms->mu);
    e = mem_find(ms, id);
    if (e == NULL) {
        rv = RF_ENOTFOUND;
    } else {
        rf_strlcpy(state, e->state, 16);
        *attempts = e->d.attempts;
    }
    pthread_mutex_unlock(&ms->mu);
    return rv;
}

rf_err
rf_webhook_memstore_attempts(rf_webhook_memstore *ms, int64_t id, rf_webhook_attempt **out,
                             size_t *n)
{
    mem_entry *e;
    rf_err rv = RF_OK;

    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&ms->mu);
    e = mem_find(ms, id);
    if (e == NULL) {
        rv = RF_ENOTFOUND;
        goto out;
    }
    if (e->n_attempts > 0) {
        *out = malloc(e->n_attempts * sizeof(**out));
        if (*out == NULL) {
            rv = RF_ENOMEM;
            goto out;
        }
        memcpy(*out, e->attempts, e->n_attempts * sizeof(**out));
        *n = e->n_attempts;
    }
out:
    pthread_mutex_unlock(&ms->mu);
    return rv;
}

/* ---- delivery workers ---- */

struct rf_webhooks {
    const rf_webhooks_config *cfg;
    const rf_ssrf_policy *policy;
    const rf_webhook_store_ops *ops;
    void *store_ctx;
    rf_webhook_secret_fn secret;
    void *secret_ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t kicks; /* bumped by every kick, so a wake-up is never lost */
    atomic_bool stop;
    pthread_t *threads;
    int n_threads;
};

typedef struct response {
    int64_t retry_after_ms;
    int64_t now_ms;
    size_t body_bytes;
    const atomic_bool *stop;
} response;

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    response *r = userdata;

    (void)ptr;
    r->body_bytes += size * nmemb; /* read and dropped: receivers' bodies are not ours */
    return size * nmemb;
}

static size_t
on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    response *r = userdata;
    size_t n = size * nitems;
    char line[256];

    if (n >= sizeof(line) || n < 12 || strncasecmp(buf, "retry-after:", 12) != 0) {
        return n;
    }
    memcpy(line, buf + 12, n - 12);
    line[n - 12] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    r->retry_after_ms = rf_webhooks_retry_after_ms(line, r->now_ms);
    return n;
}

static int
on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
            curl_off_t ulnow)
{
    response *r = clientp;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return atomic_load(r->stop) ? 1 : 0;
}

typedef struct post_result {
    int status;             /* 0 when no response */
    int64_t retry_after_ms; /* -1 when none */
    char redirect[2048];    /* Location of a 3xx, "" otherwise */
    bool aborted;           /* stopped by rf_webhooks_stop */
    bool permanent;         /* the failure will not go away by retrying */
    char error[256];
} post_result;

/* One POST of body to url (vetted first) with the given signing headers. */
static void
post_once(rf_webhooks *w, const char *url, struct curl_slist *headers, const char *body,
          post_result *res)
{
    rf_ssrf_target target;
    rf_ssrf_pin pin;
    response r;
    CURL *h = NULL;
    CURLcode cc;
    long status = 0;
    char *redirect = NULL;
    char err[256] = "";
    rf_err rv;

    memset(&pin, 0, sizeof(pin));
    rv = rf_ssrf_check_url(w->policy, url, &target, err, sizeof(err));
    if (rv != RF_OK) {
        /* A refused or malformed target stays refused; a name that does not
         * resolve may come back. */
        res->permanent = rv != RF_ENOTFOUND;
        rf_errf(res->error, sizeof(res->error), "target refused: %s", err);
        return;
    }
    h = curl_easy_init();
    if (h == NULL) {
        rf_errf(res->error, sizeof(res->error), "curl_easy_init failed");
        return;
    }
    rv = rf_ssrf_pin_apply(h, &target, &pin);
    if (rv != RF_OK) {
        rf_errf(res->error, sizeof(res->error), "cannot pin target: %s", rf_strerror(rv));
        goto out;
    }
    memset(&r, 0, sizeof(r));
    r.retry_after_ms = -1;
    r.now_ms = rf_now_ms();
    r.stop = &w->stop;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, w->cfg->user_agent);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)w->cfg->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)w->cfg->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &r);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    cc = curl_easy_perform(h);
    if (atomic_load(&w->stop)) {
        res->aborted = true;
        goto out;
    }
    if (cc != CURLE_OK) {
        if (pin.refused) {
            rf_errf(res->error, sizeof(res->error), "connected peer %s is not the vetted %s",
                    pin.refused_ip, target.addr);
        } else {
            rf_errf(res->error, sizeof(res->error), "%s", curl_easy_strerror(cc));
        }
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    res->status = (int)status;
    res->retry_after_ms = r.retry_after_ms;
    if (status >= 300 && status < 400 &&
        curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &redirect) == CURLE_OK && redirect != NULL) {
        rf_strlcpy(res->redirect, redirect, sizeof(res->redirect));
    }
out:
    rf_ssrf_pin_clear(&pin);
    curl_easy_cleanup(h);
}

static double
next_uniform(uint64_t *state)
{
    /* xorshift64*: jitter only needs to spread retries, not be secret. */
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static struct curl_slist *
signing_headers(const char *msg_id, int64_t ts, const char *sig)
{
    char line[256];
    struct curl_slist *h = NULL, *t;
    const char *fixed[] = {"Content-Type: application/json", "Expect:"};

    for (size_t i = 0; i < 2; i++) {
        t = curl_slist_append(h, fixed[i]);
        if (t == NULL) {
            goto fail;
        }
        h = t;
    }
    snprintf(line, sizeof(line), "webhook-id: %s", msg_id);
    t = curl_slist_append(h, line);
    if (t == NULL) {
        goto fail;
    }
    h = t;
    snprintf(line, sizeof(line), "webhook-timestamp: %lld", (long long)ts);
    t = curl_slist_append(h, line);
    if (t == NULL) {
        goto fail;
    }
    h = t;
    snprintf(line, sizeof(line), "webhook-signature: %s", sig);
    t = curl_slist_append(h, line);
    if (t == NULL) {
        goto fail;
    }
    return t;
fail:
    curl_slist_free_all(h);
    return NULL;
}

/* Makes one attempt of d and records it. */
static void
attempt(rf_webhooks *w, const rf_webhook_delivery *d, uint64_t *rng)
{
    rf_webhook_attempt a;
    post_result res;
    struct curl_slist *headers = NULL;
    char secret[RF_WEBHOOK_SECRET_MAX], sig[RF_WEBHOOK_SIG_MAX];
    char url[sizeof(d->url)];
    int64_t t0 = rf_mono_ms(), ts, delay;
    rf_err rv;

    memset(&a, 0, sizeof(a));
    memset(&res, 0, sizeof(res));
    res.retry_after_ms = -1;
    a.delivery_id = d->id;
    a.attempt = d->attempts + 1;
    a.started_ms = rf_now_ms();
    ts = a.started_ms / 1000;

    rv = w->secret(w->secret_ctx, d->tenant, secret, sizeof(secret));
    if (rv == RF_OK) {
        rv = rf_webhook_sign(secret, d->msg_id, ts, d->body, strlen(d->body), sig, sizeof(sig));
    }
    OPENSSL_cleanse(secret, sizeof(secret));
    if (rv != RF_OK) {
        rf_errf(res.error, sizeof(res.error), "no signing secret for tenant: %s", rf_strerror(rv));
        goto decide;
    }
    headers = signing_headers(d->msg_id, ts, sig);
    if (headers == NULL) {
        rf_errf(res.error, sizeof(res.error), "out of memory");
        goto decide;
    }
    rf_strlcpy(url, d->url, sizeof(url));
    for (int hop = 0;; hop++) {
        memset(&res, 0, sizeof(res));
        res.retry_after_ms = -1;
        post_once(w, url, headers, d->body, &res);
        if (res.aborted) {
            goto out; /* stopping: the claim lapses and a later run retries */
        }
        if (res.status < 300 || res.status >= 400) {
            break;
        }
        if (!w->cfg->follow_redirects || (res.status != 307 && res.status != 308) ||
            res.redirect[0] == '\0' || hop >= 3) {
            rf_errf(res.error, sizeof(res.error), "HTTP %d: redirect not followed%s%s", res.status,
                    res.redirect[0] ? " to " : "", res.redirect);
            break;
        }
        /* 307/308 keep the method and body; the new target is vetted again
         * by post_once before anything is sent to it. */
        rf_strlcpy(url, res.redirect, sizeof(url));
    }

decide:
    a.duration_ms = rf_mono_ms() - t0;
    a.status_code = res.status;
    if (res.status >= 200 && res.status < 300) {
        rf_strlcpy(a.outcome, "delivered", sizeof(a.outcome));
    } else if (res.status == 410) {
        rf_strlcpy(a.outcome, "disabled", sizeof(a.outcome));
        rf_strlcpy(a.error, "HTTP 410 Gone: endpoint disabled", sizeof(a.error));
    } else {
        if (res.error[0] != '\0') {
            rf_strlcpy(a.error, res.error, sizeof(a.error));
        } else {
            rf_errf(a.error, sizeof(a.error), "HTTP %d", res.status);
        }
        delay = res.permanent ? -1 : rf_webhooks_delay_ms(w->cfg, a.attempt, next_uniform(rng));
        if (delay >= 0 && (res.status == 429 || res.status == 503) && res.retry_after_ms >= 0) {
            int64_t ra = res.retry_after_ms < w->cfg->retry_after_max_ms
                             ? res.retry_after_ms
                             : w->cfg->retry_after_max_ms;
            if (ra > delay) {
                delay = ra;
            }
        }
        if (delay >= 0 && w->cfg->max_age_ms > 0 &&
            a.started_ms + delay - d->created_ms > w->cfg->max_age_ms) {
            delay = -1;
        }
        if (delay < 0) {
            rf_strlcpy(a.outcome, "abandoned", sizeof(a.outcome));
        } else {
            rf_strlcpy(a.outcome, "retry", sizeof(a.outcome));
            a.next_attempt_ms = rf_now_ms() + delay;
        }
    }
    if (strcmp(a.outcome, "delivered") == 0) {
        rf_info("webhook %s (job %s, %s) delivered on attempt %d: HTTP %d", d->msg_id, d->job_id,
                d->event_type, a.attempt, a.status_code);
    } else {
        rf_warn("webhook %s (job %s, %s) attempt %d: %s -> %s", d->msg_id, d->job_id, d->event_type,
                a.attempt, a.error, a.outcome);
    }
    if (strcmp(a.outcome, "disabled") == 0) {
        rv = w->ops->disable_endpoint(w->store_ctx, d->url, a.started_ms);
        if (rv != RF_OK) {
            rf_error("webhook: cannot disable endpoint: %s", rf_strerror(rv));
        }
    }
    rv = w->ops->record(w->store_ctx, &a);
    if (rv != RF_OK) {
        rf_error("webhook %s: cannot record attempt %d: %s", d->msg_id, a.attempt, rf_strerror(rv));
    }
out:
    curl_slist_free_all(headers);
}

static void
wait_until(rf_webhooks *w, uint64_t seen_kicks, int64_t wait_ms)
{
    struct timespec deadline;

    if (wait_ms < 1) {
        wait_ms = 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += wait_ms / 1000;
    deadline.tv_nsec += (wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    while (!atomic_load(&w->stop) && w->kicks == seen_kicks) {
        if (pthread_cond_timedwait(&w->cv, &w->mu, &deadline) == ETIMEDOUT) {
            break;
        }
    }
    pthread_mutex_unlock(&w->mu);
}

static void *
worker_main(void *arg)
{
    rf_webhooks *w = arg;
    uint64_t rng = 0;

    if (getrandom(&rng, sizeof(rng), 0) != (ssize_t)sizeof(rng) || rng == 0) {
        rng = (uint64_t)rf_mono_ns() | 1;
    }
    while (!atomic_load(&w->stop)) {
        rf_webhook_delivery d;
        int64_t now = rf_now_ms(), next_due = -1, wait_ms;
        uint64_t kicks;
        rf_err rv;

        pthread_mutex_lock(&w->mu);
        kicks = w->kicks;
        pthread_mutex_unlock(&w->mu);
        memset(&d, 0, sizeof(d));
        rv = w->ops->claim(w->store_ctx, now, w->cfg->claim_lease_ms, &d, &next_due);
        if (rv == RF_OK) {
            attempt(w, &d, &rng);
            rf_webhook_delivery_clear(&d);
            continue;
        }
        if (rv != RF_ENOTFOUND) {
            rf_error("webhook: claim failed: %s", rf_strerror(rv));
            wait_ms = 1000;
        } else if (next_due < 0) {
            wait_ms = 5000; /* nothing pending: a kick wakes us earlier */
        } else {
            wait_ms = next_due - rf_now_ms();
            if (wait_ms > 5000) {
                wait_ms = 5000; /* claims by other coordinators' workers may lapse */
            }
        }
        wait_until(w, kicks, wait_ms);
    }
    return NULL;
}

rf_err
rf_webhooks_start(const rf_webhooks_config *cfg, const rf_ssrf_policy *policy,
                  const rf_webhook_store_ops *ops, void *store_ctx, rf_webhook_secret_fn secret,
                  void *secret_ctx, rf_webhooks **out)
{
    rf_webhooks *w;
    pthread_condattr_t attr;
    int n = cfg->workers > 0 ? cfg->workers : 1;

    *out = NULL;
    if (ops == NULL || secret == NULL || cfg->n_schedule == 0) {
        return RF_EINVAL;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return RF_ENOMEM;
    }
    w->threads = calloc((size_t)n, sizeof(*w->threads));
    if (w->threads == NULL) {
        free(w);
        return RF_ENOMEM;
    }
    w->cfg = cfg;
    w->policy = policy;
    w->ops = ops;
    w->store_ctx = store_ctx;
    w->secret = secret;
    w->secret_ctx = secret_ctx;
    atomic_init(&w->stop, false);
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &attr);
    pthread_condattr_destroy(&attr);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (int i = 0; i < n; i++) {
        if (pthread_create(&w->threads[i], NULL, worker_main, w) != 0) {
            rf_error("webhook: cannot start worker %d", i);
            *out = w;
            rf_webhooks_stop(out);
            return RF_ENOMEM;
        }
        w->n_threads++;
    }
    *out = w;
    return RF_OK;
}

rf_err
rf_webhooks_enqueue(rf_webhooks *w, const char *job_id, const char *tenant, const char *url,
                    const char *event_type, const char *state, double percent_complete,
                    int64_t items_completed, int64_t items_failed, int64_t items_total,
                    json_t *data, int64_t event_id, int64_t *id_out)
{
    char msg_id[40];
    int64_t now = rf_now_ms();
    rf_webhook_delivery d;
    json_t *payload;
    rf_err rv;

    memset(&d, 0, sizeof(d));
    rf_new_id("msg_", msg_id, sizeof(msg_id));
    payload = rf_webhook_payload(msg_id, event_type, now, job_id, state, percent_complete,
                                 items_completed, items_failed, items_total, data);
    if (payload == NULL) {
        return RF_ENOMEM;
    }
    rv = rf_webhooks_make_delivery(w->cfg, job_id, tenant, url, event_type, payload, now, &d);
    json_decref(payload);
    if (rv != RF_OK) {
        goto out;
    }
    d.event_id = event_id;
    rv = w->ops->enqueue(w->store_ctx, &d);
    if (rv != RF_OK) {
        goto out;
    }
    if (id_out != NULL) {
        *id_out = d.id;
    }
    rf_webhooks_kick(w);
out:
    rf_webhook_delivery_clear(&d);
    return rv;
}

void
rf_webhooks_kick(rf_webhooks *w)
{
    if (w == NULL) {
        return;
    }
    pthread_mutex_lock(&w->mu);
    w->kicks++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void
rf_webhooks_stop(rf_webhooks **wp)
{
    rf_webhooks *w;

    if (wp == NULL || *wp == NULL) {
        return;
    }
    w = *wp;
    atomic_store(&w->stop, true);
    rf_webhooks_kick(w);
    for (int i = 0; i < w->n_threads; i++) {
        pthread_join(w->threads[i], NULL);
    }
    curl_global_cleanup();
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->threads);
    free(w);
    *wp = NULL;
}
