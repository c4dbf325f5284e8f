/* Service-account tokens: the key is parsed once, assertions are signed by
 * libjwt (RS256 through OpenSSL), tokens are cached per scope. */
#include "gauth.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>
#include <jwt.h>

#include "rf_log.h"
#include "rf_util.h"

#define KEY_FILE_MAX (64 * 1024)
#define TOKEN_RESPONSE_MAX (64 * 1024)
#define DEFAULT_TOKEN_URI "https://oauth2.googleapis.com/token"
#define CACHE_SLOTS 4
#define REFRESH_MARGIN_MAX_MS 60000

typedef struct token_slot {
    char scope[128];
    char token[RF_GAUTH_TOKEN_MAX];
    int64_t refresh_at_mono_ms; /* fetch a new token from this time on */
} token_slot;

struct rf_gauth {
    char client_email[256];
    char private_key_id[128];
    char token_uri[1024];
    char *private_key; /* PEM */
    size_t private_key_len;
    int64_t timeout_ms;
    int64_t lifetime_s;
    pthread_mutex_t mu; /* guards slots and requests */
    token_slot slots[CACHE_SLOTS];
    uint64_t requests;
};

void
rf_gerror_set(rf_gerror *e, const char *code, long http_status, const char *google_status,
              const char *fmt, ...)
{
    va_list ap;

    if (e == NULL) {
        return;
    }
    snprintf(e->code, sizeof(e->code), "%s", code);
    snprintf(e->google_status, sizeof(e->google_status), "%s",
             google_status != NULL ? google_status : "");
    e->http_status = http_status;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
}

static rf_err
copy_field(json_t *root, const char *key, char *dst, size_t len, bool required, char *err,
           size_t err_len)
{
    const char *v = json_string_value(json_object_get(root, key));

    if (v == NULL || v[0] == '\0') {
        if (!required) {
            dst[0] = '\0';
            return RF_OK;
        }
        rf_errf(err, err_len, "credentials file: '%s' is missing (download a new JSON key)", key);
        return RF_EINVAL;
    }
    if (rf_strlcpy(dst, v, len) != RF_OK) {
        rf_errf(err, err_len, "credentials file: '%s' is longer than %zu bytes", key, len - 1);
        return RF_EINVAL;
    }
    return RF_OK;
}

rf_err
rf_gauth_new(const char *key_json, size_t len, const rf_gauth_opts *opts, rf_gauth **out, char *err,
             size_t err_len)
{
    json_error_t jerr;
    json_t *root = json_loadb(key_json, len, 0, &jerr);
    rf_gauth *g = NULL;
    const char *type, *pem;
    char *probe = NULL;
    rf_err rv = RF_OK;

    *out = NULL;
    if (root == NULL || !json_is_object(root)) {
        rf_errf(err, err_len, "credentials file is not a JSON object (line %d: %s)", jerr.line,
                root == NULL ? jerr.text : "not an object");
        rv = RF_EINVAL;
        goto out;
    }
    type = json_string_value(json_object_get(root, "type"));
    if (type == NULL || strcmp(type, "service_account") != 0) {
        rf_errf(err, err_len,
                "credentials file has type '%.40s', not 'service_account': create a key for a "
                "service account in Google Cloud (IAM > Service accounts > Keys > JSON)",
                type != NULL ? type : "(none)");
        rv = RF_EINVAL;
        goto out;
    }
    g = calloc(1, sizeof(*g));
    if (g == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    if (pthread_mutex_init(&g->mu, NULL) != 0) {
        free(g);
        g = NULL;
        rv = RF_ENOMEM;
        goto out;
    }
    rv = copy_field(root, "client_email", g->client_email, sizeof(g->client_email), true, err,
                    err_len);
    if (rv == RF_OK) {
        rv = copy_field(root, "private_key_id", g->private_key_id, sizeof(g->private_key_id), false,
                        err, err_len);
    }
    if (rv == RF_OK) {
        rv = copy_field(root, "token_uri", g->token_uri, sizeof(g->token_uri), false, err, err_len);
    }
    if (rv != RF_OK) {
        goto out;
    }
    if (opts != NULL && opts->token_uri != NULL && opts->token_uri[0] != '\0') {
        rv = rf_strlcpy(g->token_uri, opts->token_uri, sizeof(g->token_uri));
        if (rv != RF_OK) {
            rf_errf(err, err_len, "token_uri is too long");
            rv = RF_EINVAL;
            goto out;
        }
    }
    if (g->token_uri[0] == '\0') {
        snprintf(g->token_uri, sizeof(g->token_uri), "%s", DEFAULT_TOKEN_URI);
    }
    pem = json_string_value(json_object_get(root, "private_key"));
    if (pem == NULL || strstr(pem, "PRIVATE KEY") == NULL) {
        rf_errf(err, err_len, "credentials file: 'private_key' is missing or not a PEM key");
        rv = RF_EINVAL;
        goto out;
    }
    g->private_key_len = strlen(pem);
    g->private_key = strdup(pem);
    if (g->private_key == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    g->timeout_ms = opts != NULL && opts->timeout_ms > 0 ? opts->timeout_ms : 30000;
    g->lifetime_s =
        opts != NULL && opts->lifetime_s > 0 && opts->lifetime_s <= 3600 ? opts->lifetime_s : 3600;
    /* Sign once now so that an unreadable key is reported at start, not at
     * the first job. */
    rv = rf_gauth_assertion(g, RF_GAUTH_SCOPE_READ, rf_now_ms() / 1000, &probe);
    if (rv != RF_OK) {
        if (rv == RF_EINVAL) {
            rf_errf(err, err_len,
                    "credentials file: the private_key of %s cannot be used to sign (not an RSA "
                    "PEM key?)",
                    g->client_email);
        }
        goto out;
    }
out:
    free(probe);
    json_decref(root);
    if (rv != RF_OK) {
        rf_gauth_free(&g);
    }
    *out = g;
    return rv;
}

rf_err
rf_gauth_load(const char *path, const rf_gauth_opts *opts, rf_gauth **out, char *err,
              size_t err_len)
{
    char *text = NULL;
    size_t len = 0;
    rf_err rv;

    *out = NULL;
    rv = rf_read_file(path, KEY_FILE_MAX, &text, &len);
    if (rv != RF_OK) {
        rf_errf(err, err_len, "credentials file %s: %s", path, rf_strerror(rv));
        return rv == RF_ENOMEM ? rv : RF_EIO;
    }
    rv = rf_gauth_new(text, len, opts, out, err, err_len);
    free(text);
    return rv;
}

void
rf_gauth_free(rf_gauth **g)
{
    if (g == NULL || *g == NULL) {
        return;
    }
    if ((*g)->private_key != NULL) {
        /* the key is a secret: do not leave it in freed memory */
        memset((*g)->private_key, 0, (*g)->private_key_len);
        free((*g)->private_key);
    }
    pthread_mutex_destroy(&(*g)->mu);
    memset(*g, 0, sizeof(**g));
    free(*g);
    *g = NULL;
}

const char *
rf_gauth_client_email(const rf_gauth *g)
{
    return g->client_email;
}

rf_err
rf_gauth_assertion(const rf_gauth *g, const char *scope, int64_t now_s, char **out)
{
    jwt_t *jwt = NULL;
    char *text = NULL;
    rf_err rv = RF_OK;

    *out = NULL;
    if (jwt_new(&jwt) != 0) {
        return RF_ENOMEM;
    }
    if (jwt_add_grant(jwt, "iss", g->client_email) != 0 ||
        jwt_add_grant(jwt, "scope", scope) != 0 || jwt_add_grant(jwt, "aud", g->token_uri) != 0 ||
        jwt_add_grant_int(jwt, "iat", (long)now_s) != 0 ||
        jwt_add_grant_int(jwt, "exp", (long)(now_s + g->lifetime_s)) != 0 ||
        (g->private_key_id[0] != '\0' && jwt_add_header(jwt, "kid", g->private_key_id) != 0)) {
        rv = RF_ENOMEM;
        goto out;
    }
    if (jwt_set_alg(jwt, JWT_ALG_RS256, (const unsigned char *)g->private_key,
                    (int)g->private_key_len) != 0) {
        rv = RF_ENOMEM;
        goto out;
    }
    text = jwt_encode_str(jwt);
    if (text == NULL) {
        rv = RF_EINVAL; /* libjwt could not sign: the key is not a usable RSA key */
        goto out;
    }
    *out = text;
out:
    jwt_free(jwt);
    return rv;
}

/* ---- the token request ---- */

/* Maps a token endpoint refusal ({"error", "error_description"}) to what
 * users should do. */
static void
token_refusal(const rf_gauth *g, long status, const char *body, size_t len, rf_gerror *e)
{
    json_t *root = json_loadb(body != NULL ? body : "", len, 0, NULL);
    const char *code = json_string_value(json_object_get(root, "error"));
    const char *desc = json_string_value(json_object_get(root, "error_description"));

    if (code == NULL) {
        code = "";
    }
    if (desc == NULL) {
        desc = "";
    }
    if (strstr(desc, "short-lived") != NULL || strstr(desc, "timeframe") != NULL) {
        rf_gerror_set(e, "invalid_credentials", status, code,
                      "Google refused the service account's token request (%s): the "
                      "coordinator's clock is off; synchronise it (NTP) and retry",
                      desc);
    } else if (strstr(desc, "Signature") != NULL || strcmp(code, "invalid_client") == 0 ||
               strcmp(code, "unauthorized_client") == 0) {
        rf_gerror_set(e, "invalid_credentials", status, code,
                      "Google refused the service account key of %s (%s%s%s): the key was "
                      "deleted, rotated or disabled; create a new JSON key and configure it",
                      g->client_email, code, desc[0] != '\0' ? ": " : "", desc);
    } else {
        rf_gerror_set(e, "invalid_credentials", status, code,
                      "Google refused the service account token request for %s (HTTP %ld %s%s%s)",
                      g->client_email, status, code, desc[0] != '\0' ? ": " : "", desc);
    }
    json_decref(root);
}

/* POSTs a fresh assertion; fills slot on success. Called with g->mu held. */
static rf_err
fetch_token(rf_gauth *g, const char *scope, token_slot *slot, rf_gerror *e)
{
    char *assertion = NULL, *form = NULL, *escaped = NULL;
    char curl_err[CURL_ERROR_SIZE] = "";
    rf_bodybuf b = {.max = TOKEN_RESPONSE_MAX};
    CURL *h = NULL;
    CURLcode rc;
    long status = 0;
    json_t *root = NULL;
    const char *token, *type;
    json_int_t expires_in;
    int64_t lifetime_ms, margin_ms;
    rf_err rv;

    rv = rf_gauth_assertion(g, scope, rf_now_ms() / 1000, &assertion);
    if (rv != RF_OK) {
        rf_gerror_set(e, "invalid_credentials", 0, NULL,
                      "the service account key of %s cannot sign token requests", g->client_email);
        goto out;
    }
    h = curl_easy_init();
    if (h == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    escaped = curl_easy_escape(h, assertion, 0);
    if (escaped == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    if (asprintf(&form, "grant_type=%s&assertion=%s",
                 "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer", escaped) < 0) {
        form = NULL;
        rv = RF_ENOMEM;
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_URL, g->token_uri);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, form);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)g->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)g->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, rf_bodybuf_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "renderfarm-coordinator/0.1");
    g->requests++;
    rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        rf_gerror_set(e, "service_unavailable", 0, NULL,
                      "could not reach Google's token endpoint %s: %s", g->token_uri,
                      curl_err[0] != '\0' ? curl_err : curl_easy_strerror(rc));
        rv = b.too_big ? RF_ETOOBIG : RF_ENET;
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status == 429 || status >= 500) {
        rf_gerror_set(e, status == 429 ? "rate_limited" : "service_unavailable", status, NULL,
                      "Google's token endpoint answered HTTP %ld; retrying later", status);
        rv = RF_ENET;
        goto out;
    }
    if (status != 200) {
        token_refusal(g, status, b.data, b.len, e);
        rv = RF_EINVAL;
        goto out;
    }
    root = json_loadb(b.data != NULL ? b.data : "", b.len, 0, NULL);
    token = json_string_value(json_object_get(root, "access_token"));
    type = json_string_value(json_object_get(root, "token_type"));
    expires_in = json_integer_value(json_object_get(root, "expires_in"));
    if (token == NULL || token[0] == '\0' || (type != NULL && strcasecmp(type, "Bearer") != 0)) {
        rf_gerror_set(e, "service_unavailable", status, NULL,
                      "Google's token endpoint sent an answer without a bearer access_token");
        rv = RF_ENET;
        goto out;
    }
    if (rf_strlcpy(slot->token, token, sizeof(slot->token)) != RF_OK) {
        rf_gerror_set(e, "invalid_credentials", status, NULL, "access token is too long");
        rv = RF_ETOOBIG;
        goto out;
    }
    snprintf(slot->scope, sizeof(slot->scope), "%s", scope);
    if (expires_in <= 0) {
        expires_in = 3600; /* Google always sends it; assume its usual hour if not */
    }
    lifetime_ms = (int64_t)expires_in * 1000;
    margin_ms = lifetime_ms / 10 < REFRESH_MARGIN_MAX_MS ? lifetime_ms / 10 : REFRESH_MARGIN_MAX_MS;
    slot->refresh_at_mono_ms = rf_mono_ms() + lifetime_ms - margin_ms;
    rf_debug("gauth: new token for %s (%s), expires in %lld s", g->client_email, scope,
             (long long)expires_in);
out:
    if (assertion != NULL) {
        free(assertion);
    }
    curl_free(escaped);
    free(form);
    free(b.data);
    json_decref(root);
    if (h != NULL) {
        curl_easy_cleanup(h);
    }
    return rv;
}

static token_slot *
find_slot(rf_gauth *g, const char *scope, bool create)
{
    token_slot *oldest = &g->slots[0];

    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        if (strcmp(g->slots[i].scope, scope) == 0) {
            return &g->slots[i];
        }
        if (g->slots[i].refresh_at_mono_ms < oldest->refresh_at_mono_ms) {
            oldest = &g->slots[i];
        }
    }
    return create ? oldest : NULL;
}

rf_err
rf_gauth_token(rf_gauth *g, const char *scope, char *buf, size_t len, rf_gerror *e)
{
    token_slot *slot;
    rf_err rv = RF_OK;

    if (strlen(scope) >= sizeof(g->slots[0].scope)) {
        rf_gerror_set(e, "invalid_credentials", 0, NULL, "OAuth scope is too long");
        return RF_EINVAL;
    }
    pthread_mutex_lock(&g->mu);
    slot = find_slot(g, scope, true);
    if (strcmp(slot->scope, scope) != 0 || slot->token[0] == '\0' ||
        rf_mono_ms() >= slot->refresh_at_mono_ms) {
        token_slot fresh;
        memset(&fresh, 0, sizeof(fresh));
        rv = fetch_token(g, scope, &fresh, e);
        if (rv == RF_OK) {
            *slot = fresh;
        }
        memset(&fresh, 0, sizeof(fresh));
    }
    if (rv == RF_OK && rf_strlcpy(buf, slot->token, len) != RF_OK) {
        rv = RF_ETOOBIG;
    }
    pthread_mutex_unlock(&g->mu);
    return rv;
}

void
rf_gauth_invalidate(rf_gauth *g, const char *scope)
{
    token_slot *slot;

    pthread_mutex_lock(&g->mu);
    slot = find_slot(g, scope, false);
    if (slot != NULL) {
        memset(slot, 0, sizeof(*slot));
    }
    pthread_mutex_unlock(&g->mu);
}

uint64_t
rf_gauth_token_requests(rf_gauth *g)
{
    uint64_t n;

    pthread_mutex_lock(&g->mu);
    n = g->requests;
    pthread_mutex_unlock(&g->mu);
    return n;
}
