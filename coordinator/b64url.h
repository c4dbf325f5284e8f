/* base64url (RFC 4648 section 5) without padding, for JWT segments and
 * opaque page tokens. No allocation: callers give the buffers. */
#ifndef RF_B64URL_H
#define RF_B64URL_H

#include <stddef.h>

#include "rf_err.h"

/* Encodes len bytes into out (NUL-terminated). RF_ETOOBIG when out (out_len
 * bytes) cannot hold the result. */
rf_err rf_b64url_encode(const void *data, size_t len, char *out, size_t out_len);

/* Decodes in_len characters (padding '=' at the end tolerated) into out (at
 * most out_cap bytes), NUL-terminating when room is left; *out_len gets the
 * byte count. RF_EINVAL for a character outside the alphabet, a length that
 * cannot be base64 or non-zero trailing bits; RF_ETOOBIG when it does not fit. */
rf_err rf_b64url_decode(const char *in, size_t in_len, void *out, size_t out_cap, size_t *out_len);

#endif
