/* Bearer-token authentication: HS256 JWTs signed with one configured secret
 * (libjwt 1.10 checks the signature; everything else is checked here).
 *
 * A token is accepted only when all of these hold (RFC 8725):
 *   - three base64url segments, at most RF_AUTH_TOKEN_MAX bytes;
 *   - the header, read before libjwt sees the token, is a JSON object whose
 *     "alg" is exactly "HS256" ("none", RS256 and everything else refused:
 *     libjwt 1.10 would accept an unsigned token), "typ" if present is "JWT",
 *     and it names no "crit", "jku", "x5u" or "jwk";
 *   - the HMAC-SHA256 signature verifies with the secret;
 *   - "exp" (required, integer seconds) is not more than leeway in the past;
 *     "nbf" if present is not more than leeway in the future; "iat" if present
 *     is not in the future beyond leeway;
 *   - "sub" is a non-empty string of at most 127 bytes (the user id);
 *   - "tenant" (or "project") is 1..63 bytes of [A-Za-z0-9._-];
 *   - "scope" if present is a space-separated string (unknown scopes ignored);
 *   - "iss" equals the configured issuer and "aud" (string or array) contains
 *     the configured audience, each when configured.
 *
 * Nothing here allocates state that outlives a call except rf_auth_mint's
 * token. */
#ifndef RF_AUTH_H
#define RF_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "rf_err.h"
#include "rf_proto.h"
#include "store.h"

#define RF_AUTH_TOKEN_MAX 8192

/* Scope bits. */
#define RF_SCOPE_JOBS_READ 0x1u
#define RF_SCOPE_JOBS_WRITE 0x2u
#define RF_SCOPE_SHEETS_CONNECT 0x4u
#define RF_SCOPE_TEMPLATES_WRITE 0x8u
#define RF_SCOPE_ALL 0xFu

/* What a verified token says about its bearer. */
typedef struct rf_principal {
    char sub[RF_USER_MAX];
    char tenant[RF_NAME_MAX];
    unsigned scopes;    /* RF_SCOPE_* bits */
    int64_t expires_at; /* exp, seconds since the epoch (0 when auth is disabled) */
} rf_principal;

typedef struct rf_auth_params {
    const char *secret;
    size_t secret_len;
    const char *issuer;   /* NULL or "": not checked */
    const char *audience; /* NULL or "": not checked */
    int64_t leeway_s;
} rf_auth_params;

/* The parameters a configuration implies (pointers into cfg). */
void rf_auth_params_from_config(const rf_coord_config *cfg, rf_auth_params *out);

/* Extracts the token of an "Authorization: Bearer <token>" value (scheme
 * case-insensitive). *token points into header. RF_EINVAL if header is NULL
 * or not a Bearer credential. */
rf_err rf_auth_bearer(const char *header, const char **token);

/* Verifies token at now_s (seconds since the epoch). RF_OK with *out filled,
 * or RF_EINVAL with why (a short human reason such as "the token has
 * expired") for every kind of bad token; RF_ENOMEM on allocation failure. */
rf_err rf_auth_verify(const rf_auth_params *p, const char *token, int64_t now_s, rf_principal *out,
                      char *why, size_t why_len);

/* Mints an HS256 token: sub, tenant, scope (space-separated), iat = now_s,
 * nbf = now_s, exp = now_s + ttl_s, and iss/aud when configured. *out is
 * malloc'd (free()). RF_EINVAL for a bad argument (empty sub, invalid
 * tenant, ttl_s < 1, secret shorter than 32 bytes). */
rf_err rf_auth_mint(const rf_auth_params *p, const char *sub, const char *tenant, const char *scope,
                    int64_t ttl_s, int64_t now_s, char **out);

/* Scope name <-> bit ("jobs:read", ...); 0 / NULL when unknown. */
unsigned rf_auth_scope_bit(const char *name);
const char *rf_auth_scope_name(unsigned bit);

/* Parses a space-separated scope list into bits (unknown names ignored). */
unsigned rf_auth_scopes_parse(const char *list);

/* The tenant name rule: 1..63 bytes of [A-Za-z0-9._-]. */
bool rf_auth_tenant_valid(const char *tenant);

#endif
