/* The REST API over civetweb. Handlers are thin: they parse and validate
 * JSON, call the job domain (jobs.h) and map its errors to a status and body.
 *
 * Two path styles reach the same handlers:
 *   /api/v1/...  the resource itself; errors {"error_code","error_message","detail"}
 *   /api/...     {"success":true,"data":...}; errors
 *                {"success":false,"error":{"code","message","detail"}}
 * Routes live in one table in api.c ({method, scope, pattern, scope needed,
 * handler}); unknown paths get 404 JSON, a known path with another method 405
 * JSON with an Allow header. Every response is application/json and carries
 * X-Correlation-Id (the request's, if it sent a sane one, or a new id), which
 * the request log line also shows.
 *
 * Every route but /healthz and /openapi.json needs a bearer token (auth.h;
 * 401 with WWW-Authenticate otherwise), then passes the rate limits
 * (ratelimit.h; 429 with Retry-After, RateLimit-Policy / RateLimit and the
 * older RateLimit-Limit / -Remaining / -Reset headers, which every limited
 * response carries), then needs its scope (403 "forbidden"). With
 * cfg->auth_disabled every request is user "anonymous" of tenant "default"
 * with every scope. A tenant sees only its own jobs: another tenant's job id
 * is 404. docs/API.md is the reference; /api/v1/openapi.json describes every
 * route. */
#ifndef RF_API_H
#define RF_API_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "rf_err.h"
#include "store.h"

typedef struct rf_api rf_api;

/* Starts the HTTP server on cfg->http_listen (civetweb "listening_ports"
 * syntax, e.g. "127.0.0.1:8080"; port 0 picks a free port) with
 * cfg->http_threads workers. st and cfg must outlive the server. RF_ENET when
 * it cannot listen. */
rf_err rf_api_start(rf_store *st, const rf_coord_config *cfg, rf_api **out);

/* The first port the server listens on (useful with port 0), or -1. */
int rf_api_port(const rf_api *api);

/* Stops the server (waits for requests in progress) and frees it.
 * NULL-safe; sets *api = NULL. */
void rf_api_stop(rf_api **api);

/* The route table, for tests that compare it with the OpenAPI document:
 * method, path template with "{}" for a parameter ("/bulk-jobs/{}/pause"),
 * and whether it lives under /api/v1 and /api (else at the root). */
size_t rf_api_route_count(void);
bool rf_api_route_at(size_t i, const char **method, const char **path, bool *api_scoped);

/* The OpenAPI 3 document served at /api/v1/openapi.json (static, embedded
 * from coordinator/openapi.json at build time). */
const char *rf_api_openapi(size_t *len);

#endif
