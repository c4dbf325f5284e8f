/* The agent side of the coordinator: a REP socket on nng_listen served by
 * several nng contexts (each: receive, decode, handle, encode, send) so that
 * a slow store call on one does not hold the others. Every request gets a
 * reply; a message that does not decode gets REFUSED "bad_message" with the
 * decoder's reason. */
#ifndef RF_DISPATCH_H
#define RF_DISPATCH_H

#include <stdint.h>

#include "config.h"
#include "rf_err.h"
#include "rf_proto.h"
#include "store.h"

typedef struct rf_dispatch rf_dispatch;

/* Number of contexts serving requests concurrently. */
#define RF_DISPATCH_CONTEXTS 4

/* Retry hint sent with NO_WORK. */
#define RF_DISPATCH_RETRY_MS 500

/* Listens on cfg->nng_listen and starts serving. st and cfg must outlive the
 * dispatcher. RF_ENET if the URL cannot be listened on. */
rf_err rf_dispatch_start(rf_store *st, const rf_coord_config *cfg, rf_dispatch **out);

/* Stops serving (in-flight handlers finish), closes the socket, frees.
 * NULL-safe; sets *d = NULL. */
void rf_dispatch_stop(rf_dispatch **d);

/* Answers one decoded request (no I/O besides the store): HELLO -> WELCOME,
 * LEASE_REQ -> UNIT / NO_WORK / REFUSED unknown_agent, PROGRESS / COMPLETE /
 * FAIL -> ACK or REFUSED (stale_lease, canceled), anything else -> REFUSED
 * bad_message. A store failure is REFUSED "internal_error". *rep is
 * overwritten; release it with rf_msg_clear. */
void rf_dispatch_handle(rf_store *st, const rf_coord_config *cfg, const rf_msg *req, rf_msg *rep,
                        int64_t now_ms);

#endif
