/* libFuzzer target for the wire decoder, the one parser that reads bytes
 * from the network. Every input must give an error or a message; a message
 * must re-encode, decode again and re-encode to the same bytes (the encoder
 * is deterministic, so any drift between encoder and decoder shows here). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rf_log.h"
#include "rf_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rf_msg m, m2;
    uint8_t *enc = NULL, *enc2 = NULL;
    size_t enc_len = 0, enc2_len = 0;
    char err[256];
    rf_err rv;

    rv = rf_msg_decode(data, size, &m, err, sizeof(err));
    if (rv != RF_OK) {
        if (rv != RF_EPROTO && rv != RF_ETOOBIG && rv != RF_EVERSION) {
            abort();
        }
        if (m.type != RF_MSG_NONE || err[0] == '\0') {
            abort();
        }
        return 0;
    }
    /* What the decoder accepts, the encoder must accept too. */
    if (rf_msg_encode(&m, &enc, &enc_len) != RF_OK) {
        abort();
    }
    if (rf_msg_decode(enc, enc_len, &m2, err, sizeof(err)) != RF_OK) {
        abort();
    }
    if (m2.type != m.type) {
        abort();
    }
    if (rf_msg_encode(&m2, &enc2, &enc2_len) != RF_OK) {
        abort();
    }
    if (enc_len != enc2_len || memcmp(enc, enc2, enc_len) != 0) {
        abort();
    }
    rf_msg_clear(&m);
    rf_msg_clear(&m2);
    free(enc);
    free(enc2);
    return 0;
}
