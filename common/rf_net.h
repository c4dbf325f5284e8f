/* nng helpers both daemons use: rf_msg <-> nng_msg, and one request/reply
 * round trip on a REQ socket through its own context (so several threads can
 * have requests in flight on one socket). */
#ifndef RF_NET_H
#define RF_NET_H

#include <nng/nng.h>

#include "rf_err.h"
#include "rf_proto.h"

/* Applies the options every socket gets: NNG_OPT_RECVMAXSZ = RF_MSG_MAX_BYTES
 * (so an oversized message is dropped by nng before we see it). */
rf_err rf_net_socket_setup(nng_socket s);

/* Encodes m into a new nng_msg (*out owned by the caller until sent). */
rf_err rf_net_encode(const rf_msg *m, nng_msg **out);

/* Decodes the body of msg into *m (see rf_msg_decode). Does not free msg. */
rf_err rf_net_decode(nng_msg *msg, rf_msg *m, char *err, size_t err_len);

/* Sends req and waits up to timeout_ms for the reply into *rep, through a
 * fresh context of the REQ socket s. RF_ETIMEDOUT on timeout, RF_ENET on a
 * transport error, a decode error if the reply is malformed. */
rf_err rf_net_call(nng_socket s, const rf_msg *req, rf_msg *rep, int timeout_ms, char *err,
                   size_t err_len);

#endif
