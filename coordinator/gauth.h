/* Google service-account authentication (OAuth 2.0 JWT bearer grant), for
 * the Sheets client:
 *
 *   the key file users download from Google Cloud (JSON: type
 *   "service_account", client_email, private_key (PEM), private_key_id,
 *   token_uri, ...) -> an RS256-signed assertion {iss: client_email, scope,
 *   aud: token_uri, iat, exp = iat + 3600} -> POST token_uri with
 *   grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=... ->
 *   {"access_token", "expires_in", "token_type": "Bearer"}.
 *
 * Tokens are cached per scope until shortly before they expire (a tenth of
 * their lifetime, at most 60 s, early) so that one token serves every read of
 * every job; the cache is guarded by a mutex, and a refresh happens under it
 * so that concurrent callers wait for one token request instead of sending
 * several. curl_global_init must have been called by the program.
 *
 * Also holds rf_gerror, the error every Google call reports to users. */
#ifndef RF_GAUTH_H
#define RF_GAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rf_err.h"

#define RF_GAUTH_SCOPE_READ "https://www.googleapis.com/auth/spreadsheets.readonly"
#define RF_GAUTH_SCOPE_WRITE "https://www.googleapis.com/auth/spreadsheets"
#define RF_GAUTH_TOKEN_MAX 4096 /* an access token, incl. NUL */

/* A failed Google call as users see it: a stable machine code (see sheets.h
 * for the list), a message saying what to do, Google's HTTP status (0 when
 * no answer came) and Google's status word ("NOT_FOUND", "invalid_grant"). */
typedef struct rf_gerror {
    char code[40];
    char message[768];
    long http_status;
    char google_status[40];
} rf_gerror;

/* Fills *e (NULL-safe). */
void rf_gerror_set(rf_gerror *e, const char *code, long http_status, const char *google_status,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

typedef struct rf_gauth rf_gauth;

typedef struct rf_gauth_opts {
    int64_t timeout_ms;    /* one token request; 0: 30 s */
    const char *token_uri; /* NULL or "": the key file's token_uri */
    int64_t lifetime_s;    /* assertion lifetime, 1..3600; 0: 3600 */
} rf_gauth_opts;

/* Reads a service-account key from JSON text. RF_EINVAL with a message in
 * err when it is not one (wrong type, a field missing, a private key that
 * cannot be read); RF_ENOMEM otherwise. */
rf_err rf_gauth_new(const char *key_json, size_t len, const rf_gauth_opts *opts, rf_gauth **out,
                    char *err, size_t err_len);

/* rf_gauth_new on a file (at most 64 KiB). RF_EIO when it cannot be read. */
rf_err rf_gauth_load(const char *path, const rf_gauth_opts *opts, rf_gauth **out, char *err,
                     size_t err_len);

/* Frees and sets *g to NULL. NULL-safe. */
void rf_gauth_free(rf_gauth **g);

/* The key's client_email (the address users share their sheet with). */
const char *rf_gauth_client_email(const rf_gauth *g);

/* Builds a signed assertion for scope at now_s (Unix seconds) into a heap
 * string (*out, free with free()). Exposed for tests. */
rf_err rf_gauth_assertion(const rf_gauth *g, const char *scope, int64_t now_s, char **out);

/* A current access token for scope into buf (len >= RF_GAUTH_TOKEN_MAX is
 * always enough), from the cache or from the token endpoint.
 * Failures, with *e filled:
 *   RF_ENET         no answer, a 5xx or a 429 (e->code "service_unavailable"
 *                   or "rate_limited"): worth retrying later;
 *   RF_EINVAL       Google refused the key or the assertion
 *                   (e->code "invalid_credentials"): retrying will not help;
 *   RF_ENOMEM, RF_ETOOBIG (token larger than buf). */
rf_err rf_gauth_token(rf_gauth *g, const char *scope, char *buf, size_t len, rf_gerror *e);

/* Drops the cached token for scope (after Google answered 401 to it). */
void rf_gauth_invalidate(rf_gauth *g, const char *scope);

/* Token requests sent so far (for tests and metrics). */
uint64_t rf_gauth_token_requests(rf_gauth *g);

#endif
