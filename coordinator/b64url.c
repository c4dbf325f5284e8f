/* base64url without padding. */
#include "b64url.h"

#include <stdint.h>
#include <string.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

rf_err
rf_b64url_encode(const void *data, size_t len, char *out, size_t out_len)
{
    const unsigned char *p = data;
    size_t need = (len / 3) * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;

    if (out_len == 0 || need >= out_len) {
        return RF_ETOOBIG;
    }
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | p[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = alphabet[(acc >> bits) & 0x3F];
        }
    }
    if (bits > 0) {
        out[o++] = alphabet[(acc << (6 - bits)) & 0x3F];
    }
    out[o] = '\0';
    return RF_OK;
}

static int
value_of(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return -1;
}

rf_err
rf_b64url_decode(const char *in, size_t in_len, void *out, size_t out_cap, size_t *out_len)
{
    unsigned char *o = out;
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;

    *out_len = 0;
    while (in_len > 0 && in[in_len - 1] == '=') {
        in_len--;
    }
    if (in_len % 4 == 1) {
        return RF_EINVAL; /* one character holds only 6 bits: never a whole byte */
    }
    for (size_t i = 0; i < in_len; i++) {
        int v = value_of(in[i]);
        if (v < 0) {
            return RF_EINVAL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= out_cap) {
                return RF_ETOOBIG;
            }
            o[n++] = (unsigned char)((acc >> bits) & 0xFF);
        }
    }
    /* Canonical encodings leave the unused low bits zero. */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        return RF_EINVAL;
    }
    if (n < out_cap) {
        o[n] = '\0';
    }
    *out_len = n;
    return RF_OK;
}
