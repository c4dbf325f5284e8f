/* JWT verification and minting. The header is checked here first because
 * libjwt 1.10 accepts an "alg": "none" token; the HMAC is checked here too,
 * in constant time, because 1.10 compares signatures with strcmp (a timing
 * oracle); and all claims are checked here because 1.10 checks none. libjwt
 * then parses the claims. */
#include "auth.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "b64url.h"

static const struct {
    const char *name;
    unsigned bit;
} scope_table[] = {
    {"jobs:read", RF_SCOPE_JOBS_READ},
    {"jobs:write", RF_SCOPE_JOBS_WRITE},
    {"sheets:connect", RF_SCOPE_SHEETS_CONNECT},
    {"templates:write", RF_SCOPE_TEMPLATES_WRITE},
};

#define N_SCOPES (sizeof(scope_table) / sizeof(scope_table[0]))

unsigned
rf_auth_scope_bit(const char *name)
{
    for (size_t i = 0; name != NULL && i < N_SCOPES; i++) {
        if (strcmp(scope_table[i].name, name) == 0) {
            return scope_table[i].bit;
        }
    }
    return 0;
}

const char *
rf_auth_scope_name(unsigned bit)
{
    for (size_t i = 0; i < N_SCOPES; i++) {
        if (scope_table[i].bit == bit) {
            return scope_table[i].name;
        }
    }
    return NULL;
}

unsigned
rf_auth_scopes_parse(const char *list)
{
    unsigned bits = 0;
    const char *p = list;

    while (p != NULL && *p != '\0') {
        char word[64];
        size_t n = 0;

        while (*p == ' ') {
            p++;
        }
        while (*p != '\0' && *p != ' ') {
            if (n + 1 < sizeof(word)) {
                word[n] = *p;
            }
            n++;
            p++;
        }
        if (n > 0 && n < sizeof(word)) {
            word[n] = '\0';
            bits |= rf_auth_scope_bit(word);
        }
    }
    return bits;
}

bool
rf_auth_tenant_valid(const char *t)
{
    size_t n = t != NULL ? strlen(t) : 0;

    if (n < 1 || n >= RF_NAME_MAX) {
        return false;
    }
    for (; *t != '\0'; t++) {
        if (!isalnum((unsigned char)*t) && *t != '.' && *t != '_' && *t != '-') {
            return false;
        }
    }
    return true;
}

void
rf_auth_params_from_config(const rf_coord_config *cfg, rf_auth_params *out)
{
    memset(out, 0, sizeof(*out));
    out->secret = cfg->jwt_secret;
    out->secret_len = strlen(cfg->jwt_secret);
    out->issuer = cfg->jwt_issuer;
    out->audience = cfg->jwt_audience;
    out->leeway_s = cfg->jwt_leeway_s;
}

rf_err
rf_auth_bearer(const char *header, const char **token)
{
    const char *p;

    *token = NULL;
    if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0) {
        return RF_EINVAL;
    }
    p = header + 7;
    while (*p == ' ') {
        p++;
    }
    if (*p == '\0') {
        return RF_EINVAL;
    }
    *token = p;
    return RF_OK;
}

static rf_err reject(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static rf_err
reject(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;

    if (why != NULL && len > 0) {
        va_start(ap, fmt);
        vsnprintf(why, len, fmt, ap);
        va_end(ap);
    }
    return RF_EINVAL;
}

/* Checks the shape (three segments of the base64url alphabet) and the
 * header. Done before libjwt parses anything. */
static rf_err
check_header(const char *token, char *why, size_t why_len)
{
    const char *dot1, *dot2;
    char head[1024];
    size_t head_len = 0;
    json_t *h = NULL;
    const json_t *alg, *typ;
    rf_err rv = RF_OK;

    if (strlen(token) > RF_AUTH_TOKEN_MAX) {
        return reject(why, why_len, "the token is longer than %d bytes", RF_AUTH_TOKEN_MAX);
    }
    for (const char *p = token; *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.') {
            return reject(why, why_len, "the token is malformed (not a compact JWS)");
        }
    }
    dot1 = strchr(token, '.');
    dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
    if (dot1 == NULL || dot2 == NULL || strchr(dot2 + 1, '.') != NULL || dot1 == token ||
        dot2 == dot1 + 1) {
        return reject(why, why_len, "the token is malformed (expected three segments)");
    }
    if (dot2[1] == '\0') {
        return reject(why, why_len, "the token is unsigned; only HS256 tokens are accepted");
    }
    if (rf_b64url_decode(token, (size_t)(dot1 - token), head, sizeof(head) - 1, &head_len) !=
        RF_OK) {
        return reject(why, why_len, "the token header is not base64url");
    }
    head[head_len] = '\0';
    h = json_loadb(head, head_len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(h)) {
        rv = reject(why, why_len, "the token header is not a JSON object");
        goto out;
    }
    alg = json_object_get(h, "alg");
    if (!json_is_string(alg)) {
        rv = reject(why, why_len, "the token header names no alg");
        goto out;
    }
    /* Exactly HS256, case and all: "none", "None", RS256 (key confusion)... */
    if (strcmp(json_string_value(alg), "HS256") != 0) {
        rv = reject(why, why_len, "the token's alg '%.16s' is not accepted; only HS256 is",
                    json_string_value(alg));
        goto out;
    }
    typ = json_object_get(h, "typ");
    if (typ != NULL && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT") != 0)) {
        rv = reject(why, why_len, "the token's typ is not JWT");
        goto out;
    }
    if (json_object_get(h, "crit") != NULL || json_object_get(h, "jku") != NULL ||
        json_object_get(h, "x5u") != NULL || json_object_get(h, "jwk") != NULL) {
        rv = reject(why, why_len, "the token header uses crit/jku/x5u/jwk, which are refused");
        goto out;
    }
out:
    json_decref(h);
    return rv;
}

/* HMAC-SHA256 of "header.payload" against the token's signature, compared
 * in constant time. check_header has vetted the token's shape. */
static rf_err
check_signature(const char *token, const rf_auth_params *p, char *why, size_t why_len)
{
    const char *dot2 = strrchr(token, '.');
    unsigned char want[EVP_MAX_MD_SIZE], got[64];
    unsigned int want_len = 0;
    size_t got_len = 0;

    if (dot2 == NULL ||
        rf_b64url_decode(dot2 + 1, strlen(dot2 + 1), got, sizeof(got), &got_len) != RF_OK) {
        return reject(why, why_len, "the token's signature is not base64url");
    }
    if (HMAC(EVP_sha256(), p->secret, (int)p->secret_len, (const unsigned char *)token,
             (size_t)(dot2 - token), want, &want_len) == NULL) {
        return reject(why, why_len, "the token's signature cannot be computed");
    }
    if (got_len != want_len || CRYPTO_memcmp(got, want, want_len) != 0) {
        return reject(why, why_len, "the token's signature does not verify");
    }
    return RF_OK;
}

/* An integer claim that must be a JSON integer when present. */
static rf_err
time_claim(const json_t *claims, const char *name, bool required, bool *present, int64_t *v,
           char *why, size_t why_len)
{
    const json_t *c = json_object_get(claims, name);

    *present = false;
    if (c == NULL) {
        return required ? reject(why, why_len, "the token has no %s claim", name) : RF_OK;
    }
    if (json_is_integer(c)) {
        *v = (int64_t)json_integer_value(c);
    } else if (json_is_real(c)) {
        *v = (int64_t)json_real_value(c); /* NumericDate may carry fractions */
    } else {
        return reject(why, why_len, "the token's %s claim is not a number", name);
    }
    *present = true;
    return RF_OK;
}

static bool
audience_ok(const json_t *aud, const char *want)
{
    size_t i;
    const json_t *v;

    if (json_is_string(aud)) {
        return strcmp(json_string_value(aud), want) == 0;
    }
    json_array_foreach(aud, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), want) == 0) {
            return true;
        }
    }
    return false;
}

static rf_err
check_claims(const rf_auth_params *p, json_t *claims, int64_t now_s, rf_principal *out, char *why,
             size_t why_len)
{
    const json_t *sub, *tenant, *scope;
    int64_t exp = 0, nbf = 0, iat = 0;
    bool has = false;
    rf_err rv;

    rv = time_claim(claims, "exp", true, &has, &exp, why, why_len);
    if (rv != RF_OK) {
        return rv;
    }
    if (now_s > exp + p->leeway_s) {
        return reject(why, why_len, "the token has expired");
    }
    rv = time_claim(claims, "nbf", false, &has, &nbf, why, why_len);
    if (rv != RF_OK) {
        return rv;
    }
    if (has && nbf > now_s + p->leeway_s) {
        return reject(why, why_len, "the token is not valid yet (nbf)");
    }
    rv = time_claim(claims, "iat", false, &has, &iat, why, why_len);
    if (rv != RF_OK) {
        return rv;
    }
    if (has && iat > now_s + p->leeway_s) {
        return reject(why, why_len, "the token was issued in the future (iat)");
    }
    if (p->issuer != NULL && p->issuer[0] != '\0') {
        const json_t *iss = json_object_get(claims, "iss");
        if (!json_is_string(iss) || strcmp(json_string_value(iss), p->issuer) != 0) {
            return reject(why, why_len, "the token's issuer is not accepted");
        }
    }
    if (p->audience != NULL && p->audience[0] != '\0' &&
        !audience_ok(json_object_get(claims, "aud"), p->audience)) {
        return reject(why, why_len, "the token's audience is not accepted");
    }
    sub = json_object_get(claims, "sub");
    if (!json_is_string(sub) || json_string_length(sub) == 0 ||
        json_string_length(sub) >= sizeof(out->sub) ||
        json_string_length(sub) != strlen(json_string_value(sub))) {
        return reject(why, why_len, "the token names no valid user (sub)");
    }
    tenant = json_object_get(claims, "tenant");
    if (tenant == NULL) {
        tenant = json_object_get(claims, "project");
    }
    if (!json_is_string(tenant) || !rf_auth_tenant_valid(json_string_value(tenant)) ||
        json_string_length(tenant) != strlen(json_string_value(tenant))) {
        return reject(why, why_len, "the token names no valid tenant (tenant or project claim)");
    }
    scope = json_object_get(claims, "scope");
    if (scope != NULL && !json_is_string(scope)) {
        return reject(why, why_len, "the token's scope claim is not a string");
    }
    memset(out, 0, sizeof(*out));
    memcpy(out->sub, json_string_value(sub), json_string_length(sub) + 1);
    memcpy(out->tenant, json_string_value(tenant), json_string_length(tenant) + 1);
    out->scopes = scope != NULL ? rf_auth_scopes_parse(json_string_value(scope)) : 0;
    out->expires_at = exp;
    return RF_OK;
}

rf_err
rf_auth_verify(const rf_auth_params *p, const char *token, int64_t now_s, rf_principal *out,
               char *why, size_t why_len)
{
    jwt_t *jwt = NULL;
    char *grants = NULL;
    json_t *claims = NULL;
    rf_err rv;
    int rc;

    memset(out, 0, sizeof(*out));
    if (token == NULL || token[0] == '\0') {
        return reject(why, why_len, "no token");
    }
    if (p->secret == NULL || p->secret_len == 0) {
        return reject(why, why_len, "no secret is configured to verify tokens");
    }
    rv = check_header(token, why, why_len);
    if (rv == RF_OK) {
        rv = check_signature(token, p, why, why_len);
    }
    if (rv != RF_OK) {
        return rv;
    }
    /* Always with the key: libjwt then refuses a token it cannot verify. */
    rc = jwt_decode(&jwt, token, (const unsigned char *)p->secret, (int)p->secret_len);
    if (rc != 0 || jwt == NULL) {
        rv = reject(why, why_len,
                    rc == EINVAL ? "the token's signature does not verify"
                                 : "the token cannot be decoded");
        goto out;
    }
    if (jwt_get_alg(jwt) != JWT_ALG_HS256) {
        rv = reject(why, why_len, "the token's alg is not HS256");
        goto out;
    }
    grants = jwt_get_grants_json(jwt, NULL);
    claims = grants != NULL ? json_loads(grants, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (!json_is_object(claims)) {
        rv = reject(why, why_len, "the token's claims are not a JSON object");
        goto out;
    }
    rv = check_claims(p, claims, now_s, out, why, why_len);
out:
    json_decref(claims);
    free(grants);
    jwt_free(jwt);
    if (rv != RF_OK) {
        memset(out, 0, sizeof(*out));
    }
    return rv;
}

rf_err
rf_auth_mint(const rf_auth_params *p, const char *sub, const char *tenant, const char *scope,
             int64_t ttl_s, int64_t now_s, char **out)
{
    jwt_t *jwt = NULL;
    char *text = NULL;
    rf_err rv = RF_OK;
    int rc = 0;

    *out = NULL;
    if (sub == NULL || sub[0] == '\0' || strlen(sub) >= RF_USER_MAX ||
        !rf_auth_tenant_valid(tenant) || ttl_s < 1 || p->secret == NULL || p->secret_len < 32) {
        return RF_EINVAL;
    }
    if (jwt_new(&jwt) != 0) {
        return RF_ENOMEM;
    }
    rc = jwt_add_grant(jwt, "sub", sub);
    rc = rc != 0 ? rc : jwt_add_grant(jwt, "tenant", tenant);
    rc = rc != 0 ? rc : jwt_add_grant(jwt, "scope", scope != NULL ? scope : "");
    rc = rc != 0 ? rc : jwt_add_grant_int(jwt, "iat", (long)now_s);
    rc = rc != 0 ? rc : jwt_add_grant_int(jwt, "nbf", (long)now_s);
    rc = rc != 0 ? rc : jwt_add_grant_int(jwt, "exp", (long)(now_s + ttl_s));
    if (rc == 0 && p->issuer != NULL && p->issuer[0] != '\0') {
        rc = jwt_add_grant(jwt, "iss", p->issuer);
    }
    if (rc == 0 && p->audience != NULL && p->audience[0] != '\0') {
        rc = jwt_add_grant(jwt, "aud", p->audience);
    }
    if (rc == 0) {
        rc = jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)p->secret, (int)p->secret_len);
    }
    if (rc != 0) {
        rv = rc == ENOMEM ? RF_ENOMEM : RF_EINVAL;
        goto out;
    }
    text = jwt_encode_str(jwt);
    if (text == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    *out = strdup(text);
    if (*out == NULL) {
        rv = RF_ENOMEM;
    }
out:
    free(text);
    jwt_free(jwt);
    return rv;
}
