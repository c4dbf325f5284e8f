/* rfctl's HTTP client: one libcurl easy handle talking JSON to the
 * coordinator's /api/v1 routes, with bounded retries and the error shapes of
 * both API path styles decoded into one struct.
 *
 * Retries: a request is retried (same body, same Idempotency-Key) with
 * exponential backoff, honouring Retry-After, when
 *   - it is safe to repeat (GET, or a POST carrying an Idempotency-Key) and
 *     the transport failed in any way or the answer was 429, 502, 503, 504;
 *   - it is not (a plain POST such as pause) only when the connection could
 *     not even be made, or the answer was 429 or 503 (the request was refused
 *     before doing anything).
 * Everything else is handed back at once. */
#ifndef RF_CLI_HTTP_H
#define RF_CLI_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "rf_err.h"

typedef struct rf_cli_http rf_cli_http;

typedef struct rf_cli_http_opts {
    const char *base_url; /* "http://host:port", a path prefix allowed; copied */
    const char *token;    /* bearer token or NULL/""; copied */
    long timeout_ms;      /* whole-request limit per attempt; 0: 30 s */
    int retries;          /* extra attempts after the first; < 0: 3 */
    bool verbose;         /* one stderr line per attempt */
} rf_cli_http_opts;

/* One answer. body is the parsed JSON (NULL when the body was empty or not
 * JSON; raw then still has the text). The error fields are filled for any
 * status >= 400 from either error shape:
 *   {"error_code","error_message","detail"} or
 *   {"success":false,"error":{"code","message","detail"}}
 * and a {"success":true,"data":X} body is unwrapped to X. */
typedef struct rf_cli_resp {
    long status; /* HTTP status; 0 when no answer came (net_error says why) */
    json_t *body;
    char *raw; /* NUL-terminated, may be NULL */
    size_t raw_len;
    char correlation_id[96];
    long retry_after_s;       /* -1 when absent */
    long ratelimit_remaining; /* RateLimit-Remaining, -1 when absent */
    long ratelimit_reset_s;   /* RateLimit-Reset (seconds), -1 when absent */
    char error_code[64];
    char error_message[512];
    json_t *error_detail; /* NULL when absent or null */
    char net_error[1024];
    int attempts;
} rf_cli_resp;

/* Creates a client. RF_EINVAL for a base URL that is not http(s)://,
 * RF_ENOMEM, RF_EIO when libcurl cannot start. Free with rf_cli_http_free. */
rf_err rf_cli_http_new(const rf_cli_http_opts *opts, rf_cli_http **out);

/* Frees the client. NULL-safe; sets *h = NULL. */
void rf_cli_http_free(rf_cli_http **h);

/* Sends method path (path starts with '/', may carry a query string) with an
 * optional JSON body and Idempotency-Key, retrying as described above.
 * Returns RF_OK when an HTTP answer arrived (whatever its status), RF_ENET
 * when none did after the retries (out->net_error says why), RF_ETOOBIG when
 * the answer exceeded 64 MiB, RF_ENOMEM. *out is zeroed first and must be
 * released with rf_cli_resp_clear in every case. */
rf_err rf_cli_http_do(rf_cli_http *h, const char *method, const char *path, const char *body,
                      const char *idem_key, rf_cli_resp *out);

/* Releases what a response holds and zeroes it. NULL-safe, idempotent. */
void rf_cli_resp_clear(rf_cli_resp *r);

/* Appends "name=value" (value percent-encoded) to a query string being built
 * in buf, with '?' or '&' as needed. RF_ETOOBIG when it does not fit. */
rf_err rf_cli_query_add(char *buf, size_t len, const char *name, const char *value);

/* Percent-encodes one path segment (a job id from the command line) into
 * buf. RF_ETOOBIG when it does not fit. */
rf_err rf_cli_path_escape(const char *segment, char *buf, size_t len);

#endif
