/* Live progress wired into the coordinator (docs/LIVE.md): the WebSocket
 * feed (ws.h), job webhooks over the SQLite store (webhooks.h), the SSRF
 * guard for callback_url (ssrf.h) and one ETA estimator per running job
 * (eta.h).
 *
 * Events reach it through the store's post-commit hook (store.h): the hook
 * only appends them to an in-memory queue, and one publisher thread turns
 * them into feed messages and webhook deliveries in commit order. So nothing
 * is published for a rolled-back transaction, nothing is published while the
 * store lock is held, and a job's messages keep their order. Progress
 * notifications of a job still queued are merged (the newest report wins).
 *
 * Lifetime: rf_live_start after the store is open (before dispatch, so no
 * event is missed); rf_live_attach_ws after mg_start; at shutdown mg_stop
 * (rf_api_stop), then rf_live_stop. The object is shared by civetweb
 * workers, the dispatcher and the publisher: every function is thread-safe. */
#ifndef RF_LIVE_WIRING_H
#define RF_LIVE_WIRING_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "config.h"
#include "rf_err.h"
#include "store.h"

struct mg_context;
typedef struct rf_live rf_live;

/* Builds the SSRF policy from webhook_allow, the webhook secret source
 * (webhook_secret_master or per-tenant random secrets stored in the
 * database), starts the webhook workers and the publisher, and installs the
 * store's event hook. cfg and st must outlive the object. RF_EINVAL with a
 * logged reason for a bad webhook_allow, webhook_schedule or master file. */
rf_err rf_live_start(rf_store *st, const rf_coord_config *cfg, rf_live **out);

/* Attaches the WebSocket feed (three path styles) to a started civetweb
 * context; tokens are checked with auth (copied; its strings must outlive
 * the feed) and the scope jobs:read. */
rf_err rf_live_attach_ws(rf_live *lv, struct mg_context *ctx, const rf_auth_params *auth);

/* Removes the store hook, stops the publisher and the webhook workers and
 * frees the feed. Call after mg_stop of the context the feed is attached to.
 * NULL-safe; sets *lv = NULL. */
void rf_live_stop(rf_live **lv);

/* Checks a callback_url against the SSRF guard (blocking DNS). RF_OK, or
 * RF_EINVAL / RF_ENOTFOUND / RF_ECONFLICT with the reason in err. */
rf_err rf_live_check_callback(rf_live *lv, const char *url, char *err, size_t err_len);

/* The measured ETA of a running job for frames_remaining frames.
 * RF_ENOTFOUND while unknown (see docs/LIVE.md). */
rf_err rf_live_eta(rf_live *lv, const char *job_id, uint64_t frames_remaining, int64_t *eta_ms);

/* The tenant's webhook secret ("whsec_..."), created and stored on first use
 * unless derived from webhook_secret_master. */
/* Sends job_id's followers a fresh job.progress (its rate_limited flipped).
 * lv may be NULL (no-op). Callable from any thread. */
void rf_live_progress_changed(rf_live *lv, const char *job_id);

rf_err rf_live_secret(rf_live *lv, const char *tenant, char *out, size_t len);

#endif
