/* Small helpers both daemons use: clocks, ids, hashing, files. */
#ifndef RF_UTIL_H
#define RF_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rf_err.h"

/* Wall clock in milliseconds since the Unix epoch. */
int64_t rf_now_ms(void);

/* Monotonic clock in milliseconds / nanoseconds (for durations). */
int64_t rf_mono_ms(void);
int64_t rf_mono_ns(void);

/* Formats a Unix-epoch millisecond time as RFC 3339 UTC
 * ("2025-10-30T01:00:00Z"); buf must hold at least 32 bytes. */
void rf_time_rfc3339(int64_t ms, char *buf, size_t len);

/* Writes a random identifier "<prefix><26 chars of Crockford base32>" whose
 * first 10 chars encode the millisecond time (ULID-like, sortable).
 * buf must hold strlen(prefix) + 27 bytes. Uses getrandom(2). */
void rf_new_id(const char *prefix, char *buf, size_t len);

/* SHA-256 of a whole file as 64 lowercase hex chars + NUL (hex must hold 65). */
rf_err rf_sha256_file(const char *path, char hex[65]);

/* mkdir -p with mode 0755. */
rf_err rf_mkdirs(const char *path);

/* Reads a whole file into a NUL-terminated malloc'd buffer, refusing files
 * larger than max_bytes (RF_ETOOBIG). */
rf_err rf_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len);

/* snprintf that reports truncation as RF_ETOOBIG. */
rf_err rf_fmt(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Formats an error message into err (size err_len); does nothing when err
 * is NULL or err_len is 0, so callers can pass optional buffers through. */
void rf_errf(char *err, size_t err_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Copies src into dst (size len) NUL-terminated; RF_ETOOBIG if it did not fit. */
rf_err rf_strlcpy(char *dst, const char *src, size_t len);

/* Code points in s[0..len) of valid UTF-8 (continuation bytes not counted). */
size_t rf_utf8_chars(const char *s, size_t len);

/* Whether s is one of list (NULL-terminated), byte for byte. */
bool rf_str_in_list(const char *s, const char *const *list);

/* A response body read into memory: at most max bytes, NUL-terminated
 * (data stays NULL while empty). The caller frees data. */
typedef struct rf_bodybuf {
    char *data;
    size_t len;
    size_t max;
    bool too_big; /* more than max arrived; the transfer was aborted */
} rf_bodybuf;

/* Appends a chunk to the rf_bodybuf at userdata, with the shape of libcurl's
 * CURLOPT_WRITEFUNCTION: returns size * nmemb, or 0 (which aborts the
 * transfer) past max or when out of memory. */
size_t rf_bodybuf_write(char *ptr, size_t size, size_t nmemb, void *userdata);

#endif
