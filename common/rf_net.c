/* nng glue: rf_msg <-> nng_msg and one request/reply round trip through a
 * private REQ context, so that several threads can share one socket. */
#include "rf_net.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rf_util.h"

static void
set_err(char *err, size_t err_len, const char *what, int nrv)
{
    if (err != NULL && err_len > 0) {
        snprintf(err, err_len, "%s: %s", what, nng_strerror(nrv));
    }
}

static rf_err
map_nng(int nrv)
{
    switch (nrv) {
    case 0:
        return RF_OK;
    case NNG_ETIMEDOUT:
        return RF_ETIMEDOUT;
    case NNG_ENOMEM:
        return RF_ENOMEM;
    case NNG_EMSGSIZE:
        return RF_ETOOBIG;
    case NNG_ECANCELED:
        return RF_ECANCELED;
    default:
        return RF_ENET;
    }
}

rf_err
rf_net_socket_setup(nng_socket s)
{
    int nrv;

    nrv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, RF_MSG_MAX_BYTES);
    if (nrv != 0) {
        return map_nng(nrv);
    }
    return RF_OK;
}

rf_err
rf_net_encode(const rf_msg *m, nng_msg **out)
{
    rf_err rv;
    uint8_t *buf = NULL;
    size_t len = 0;
    nng_msg *msg = NULL;
    int nrv;

    if (out == NULL) {
        return RF_EINVAL;
    }
    *out = NULL;
    rv = rf_msg_encode(m, &buf, &len);
    if (rv != RF_OK) {
        goto out;
    }
    nrv = nng_msg_alloc(&msg, len);
    if (nrv != 0) {
        rv = map_nng(nrv);
        goto out;
    }
    memcpy(nng_msg_body(msg), buf, len);
    *out = msg;
out:
    free(buf);
    return rv;
}

rf_err
rf_net_decode(nng_msg *msg, rf_msg *m, char *err, size_t err_len)
{
    if (msg == NULL || m == NULL) {
        return RF_EINVAL;
    }
    return rf_msg_decode(nng_msg_body(msg), nng_msg_len(msg), m, err, err_len);
}

/* Remaining time until deadline (monotonic ms), at least 1 ms so that a
 * nearly spent budget still yields a timeout rather than "no timeout". */
static nng_duration
remaining(int64_t deadline)
{
    int64_t left = deadline - rf_mono_ms();

    if (left < 1) {
        left = 1;
    }
    if (left > INT32_MAX) {
        left = INT32_MAX;
    }
    return (nng_duration)left;
}

rf_err
rf_net_call(nng_socket s, const rf_msg *req, rf_msg *rep, int timeout_ms, char *err, size_t err_len)
{
    rf_err rv = RF_OK;
    nng_ctx ctx = NNG_CTX_INITIALIZER;
    bool ctx_open = false;
    nng_aio *aio = NULL;
    nng_msg *msg = NULL;
    int nrv;
    int64_t deadline;

    if (err != NULL && err_len > 0) {
        err[0] = '\0';
    }
    if (req == NULL || rep == NULL) {
        return RF_EINVAL;
    }
    memset(rep, 0, sizeof(*rep));
    /* One budget covers both the send (which waits for a connected peer)
     * and the reply. A negative timeout means wait forever. */
    deadline = rf_mono_ms() + (timeout_ms < 0 ? 0 : timeout_ms);

    rv = rf_net_encode(req, &msg);
    if (rv != RF_OK) {
        if (err != NULL && err_len > 0) {
            snprintf(err, err_len, "encode request: %s", rf_strerror(rv));
        }
        goto out;
    }
    nrv = nng_ctx_open(&ctx, s);
    if (nrv != 0) {
        set_err(err, err_len, "nng_ctx_open", nrv);
        rv = map_nng(nrv);
        goto out;
    }
    ctx_open = true;
    nrv = nng_aio_alloc(&aio, NULL, NULL);
    if (nrv != 0) {
        set_err(err, err_len, "nng_aio_alloc", nrv);
        rv = map_nng(nrv);
        goto out;
    }

    nng_aio_set_timeout(aio, timeout_ms < 0 ? NNG_DURATION_INFINITE : remaining(deadline));
    nng_aio_set_msg(aio, msg);
    nng_ctx_send(ctx, aio);
    nng_aio_wait(aio);
    nrv = nng_aio_result(aio);
    if (nrv != 0) {
        /* nng owns a message only once the send succeeded. */
        set_err(err, err_len, "send", nrv);
        rv = map_nng(nrv);
        goto out;
    }
    msg = NULL;

    nng_aio_set_timeout(aio, timeout_ms < 0 ? NNG_DURATION_INFINITE : remaining(deadline));
    nng_ctx_recv(ctx, aio);
    nng_aio_wait(aio);
    nrv = nng_aio_result(aio);
    if (nrv != 0) {
        set_err(err, err_len, "receive", nrv);
        rv = map_nng(nrv);
        goto out;
    }
    msg = nng_aio_get_msg(aio);
    rv = rf_net_decode(msg, rep, err, err_len);
out:
    if (msg != NULL) {
        nng_msg_free(msg);
    }
    if (aio != NULL) {
        nng_aio_free(aio);
    }
    if (ctx_open) {
        nng_ctx_close(ctx);
    }
    return rv;
}
