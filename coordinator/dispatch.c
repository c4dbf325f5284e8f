/* nng REP service with a fixed pool of contexts driven by aio callbacks. */
#include "dispatch.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "jobs.h"
#include "rf_log.h"
#include "rf_net.h"
#include "rf_util.h"

typedef enum worker_state { W_RECV, W_SEND } worker_state;

typedef struct worker {
    struct rf_dispatch *d;
    nng_ctx ctx;
    nng_aio *aio;
    worker_state state;
    bool ctx_open;
} worker;

struct rf_dispatch {
    rf_store *st;
    const rf_coord_config *cfg;
    nng_socket sock;
    bool sock_open;
    atomic_bool stopping;
    worker workers[RF_DISPATCH_CONTEXTS];
};

static void set_refused(rf_msg *rep, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_refused(rf_msg *rep, const char *code, const char *fmt, ...)
{
    va_list ap;

    rf_msg_clear(rep);
    rep->type = RF_MSG_REFUSED;
    snprintf(rep->u.refused.code, sizeof(rep->u.refused.code), "%s", code);
    va_start(ap, fmt);
    vsnprintf(rep->u.refused.reason, sizeof(rep->u.refused.reason), fmt, ap);
    va_end(ap);
}

static void
answer_outcome(const rf_outcome *oc, rf_msg *rep, uint64_t expires_ms)
{
    switch (oc->verdict) {
    case RF_VERDICT_OK:
        rep->type = RF_MSG_ACK;
        rep->u.ack.lease_expires_ms = expires_ms;
        return;
    case RF_VERDICT_STALE:
        set_refused(rep, "stale_lease", "%s", oc->reason);
        return;
    case RF_VERDICT_CANCELED:
        set_refused(rep, "canceled", "%s", oc->reason);
        return;
    case RF_VERDICT_UNKNOWN_AGENT:
        set_refused(rep, "unknown_agent", "%s", oc->reason);
        return;
    }
}

void
rf_dispatch_handle(rf_store *st, const rf_coord_config *cfg, const rf_msg *req, rf_msg *rep,
                   int64_t now_ms)
{
    rf_outcome oc;
    rf_err rv = RF_OK;

    memset(rep, 0, sizeof(*rep));
    memset(&oc, 0, sizeof(oc));
    switch (req->type) {
    case RF_MSG_HELLO:
        rv = rf_jobs_agent_hello(st, &req->u.hello, now_ms);
        if (rv == RF_OK) {
            rep->type = RF_MSG_WELCOME;
            snprintf(rep->u.welcome.agent_id, sizeof(rep->u.welcome.agent_id), "%s",
                     req->u.hello.agent_id);
            rep->u.welcome.lease_ttl_ms = (uint32_t)cfg->lease_ttl_ms;
            rep->u.welcome.heartbeat_ms = (uint32_t)(cfg->lease_ttl_ms / 3);
        }
        break;
    case RF_MSG_LEASE_REQ: {
        bool leased = false;
        rv = rf_jobs_lease(st, cfg, req->u.lease_req.agent_id, now_ms, &rep->u.unit, &leased, &oc);
        if (rv != RF_OK) {
            break;
        }
        if (oc.verdict != RF_VERDICT_OK) {
            rf_info("refused lease request from agent %s: %s", req->u.lease_req.agent_id,
                    oc.reason);
            answer_outcome(&oc, rep, 0);
        } else if (leased) {
            rep->type = RF_MSG_UNIT;
        } else {
            rep->type = RF_MSG_NO_WORK;
            rep->u.no_work.retry_ms = RF_DISPATCH_RETRY_MS;
        }
        break;
    }
    case RF_MSG_PROGRESS: {
        uint64_t expires = 0;
        rv = rf_jobs_progress(st, cfg, &req->u.progress, now_ms, &expires, &oc);
        if (rv == RF_OK) {
            answer_outcome(&oc, rep, expires);
        }
        break;
    }
    case RF_MSG_COMPLETE:
        rv = rf_jobs_complete(st, cfg, &req->u.complete, now_ms, &oc);
        if (rv == RF_OK) {
            answer_outcome(&oc, rep, 0);
        }
        break;
    case RF_MSG_FAIL:
        rv = rf_jobs_fail(st, cfg, &req->u.fail, now_ms, &oc);
        if (rv == RF_OK) {
            answer_outcome(&oc, rep, 0);
        }
        break;
    default: {
        const char *name = rf_msg_type_name(req->type);
        set_refused(rep, "bad_message", "unexpected message type '%s' from an agent",
                    name != NULL ? name : "?");
        rf_info("refused message: unexpected type '%s'", name != NULL ? name : "?");
        return;
    }
    }
    if (rv != RF_OK) {
        rf_error("dispatch: %s request failed: %s", rf_msg_type_name(req->type), rf_strerror(rv));
        set_refused(rep, "internal_error", "the coordinator could not handle the request: %s",
                    rf_strerror(rv));
    }
}

/* Builds the reply message for one received request. Never fails: a reply
 * that cannot be encoded is replaced by a REFUSED that can. */
static nng_msg *
serve(rf_dispatch *d, nng_msg *in)
{
    rf_msg req, rep;
    char err[256] = "";
    nng_msg *out = NULL;
    rf_err rv;

    memset(&rep, 0, sizeof(rep));
    rv = rf_net_decode(in, &req, err, sizeof(err));
    if (rv != RF_OK) {
        rf_info("refused malformed message (%zu bytes): %s", nng_msg_len(in), err);
        set_refused(&rep, "bad_message", "%s", err[0] != '\0' ? err : rf_strerror(rv));
    } else {
        rf_dispatch_handle(d->st, d->cfg, &req, &rep, rf_now_ms());
        rf_msg_clear(&req);
    }
    rv = rf_net_encode(&rep, &out);
    if (rv != RF_OK) {
        rf_error("dispatch: cannot encode a %s reply: %s", rf_msg_type_name(rep.type),
                 rf_strerror(rv));
        set_refused(&rep, "internal_error", "the reply could not be encoded");
        rv = rf_net_encode(&rep, &out);
        if (rv != RF_OK) {
            out = NULL;
        }
    }
    rf_msg_clear(&rep);
    return out;
}

static void
worker_cb(void *arg)
{
    worker *w = arg;
    rf_dispatch *d = w->d;
    int rc = nng_aio_result(w->aio);

    switch (w->state) {
    case W_RECV: {
        nng_msg *in, *out;
        if (rc != 0) {
            if (rc == NNG_ECLOSED || rc == NNG_ECANCELED || atomic_load(&d->stopping)) {
                return;
            }
            rf_warn("dispatch: receive failed: %s", nng_strerror(rc));
            nng_ctx_recv(w->ctx, w->aio);
            return;
        }
        in = nng_aio_get_msg(w->aio);
        out = serve(d, in);
        nng_msg_free(in);
        if (out == NULL) {
            /* Nothing to send (allocation failure): wait for the next request;
             * the peer's REQ will resend after its timeout. */
            nng_ctx_recv(w->ctx, w->aio);
            return;
        }
        nng_aio_set_msg(w->aio, out);
        w->state = W_SEND;
        nng_ctx_send(w->ctx, w->aio);
        return;
    }
    case W_SEND:
        if (rc != 0) {
            /* A message is ours again when its send failed. */
            nng_msg_free(nng_aio_get_msg(w->aio));
            if (rc == NNG_ECLOSED || rc == NNG_ECANCELED || atomic_load(&d->stopping)) {
                return;
            }
            rf_warn("dispatch: send failed: %s", nng_strerror(rc));
        }
        w->state = W_RECV;
        if (!atomic_load(&d->stopping)) {
            nng_ctx_recv(w->ctx, w->aio);
        }
        return;
    }
}

rf_err
rf_dispatch_start(rf_store *st, const rf_coord_config *cfg, rf_dispatch **out)
{
    rf_dispatch *d = calloc(1, sizeof(*d));
    rf_err rv = RF_OK;
    int rc;

    *out = NULL;
    if (d == NULL) {
        return RF_ENOMEM;
    }
    d->st = st;
    d->cfg = cfg;
    atomic_init(&d->stopping, false);
    rc = nng_rep0_open(&d->sock);
    if (rc != 0) {
        rf_error("dispatch: cannot open a REP socket: %s", nng_strerror(rc));
        rv = RF_ENET;
        goto out;
    }
    d->sock_open = true;
    rv = rf_net_socket_setup(d->sock);
    if (rv != RF_OK) {
        goto out;
    }
    for (int i = 0; i < RF_DISPATCH_CONTEXTS; i++) {
        worker *w = &d->workers[i];
        w->d = d;
        rc = nng_aio_alloc(&w->aio, worker_cb, w);
        if (rc == 0) {
            rc = nng_ctx_open(&w->ctx, d->sock);
            w->ctx_open = rc == 0;
        }
        if (rc != 0) {
            rf_error("dispatch: cannot set up a context: %s", nng_strerror(rc));
            rv = RF_ENET;
            goto out;
        }
    }
    rc = nng_listen(d->sock, cfg->nng_listen, NULL, 0);
    if (rc != 0) {
        rf_error("dispatch: cannot listen on %s: %s", cfg->nng_listen, nng_strerror(rc));
        rv = RF_ENET;
        goto out;
    }
    for (int i = 0; i < RF_DISPATCH_CONTEXTS; i++) {
        d->workers[i].state = W_RECV;
        nng_ctx_recv(d->workers[i].ctx, d->workers[i].aio);
    }
    rf_info("dispatch: listening on %s with %d contexts", cfg->nng_listen, RF_DISPATCH_CONTEXTS);
out:
    if (rv != RF_OK) {
        rf_dispatch_stop(&d);
        return rv;
    }
    *out = d;
    return RF_OK;
}

void
rf_dispatch_stop(rf_dispatch **dp)
{
    rf_dispatch *d;

    if (dp == NULL || *dp == NULL) {
        return;
    }
    d = *dp;
    atomic_store(&d->stopping, true);
    /* Closing the socket aborts pending receives and sends with NNG_ECLOSED;
     * nng_aio_stop then waits for any callback still running. */
    if (d->sock_open) {
        nng_close(d->sock);
    }
    for (int i = 0; i < RF_DISPATCH_CONTEXTS; i++) {
        worker *w = &d->workers[i];
        if (w->aio != NULL) {
            nng_aio_stop(w->aio);
        }
    }
    for (int i = 0; i < RF_DISPATCH_CONTEXTS; i++) {
        worker *w = &d->workers[i];
        if (w->aio != NULL) {
            nng_aio_free(w->aio);
        }
    }
    free(d);
    *dp = NULL;
}
