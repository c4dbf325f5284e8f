/* Clocks, ids, hashing and file helpers. */
#include "rf_util.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

int64_t
rf_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
rf_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
rf_mono_ms(void)
{
    return rf_mono_ns() / 1000000;
}

void
rf_time_rfc3339(int64_t ms, char *buf, size_t len)
{
    struct tm tm;
    time_t secs;

    if (buf == NULL || len == 0) {
        return;
    }
    /* Floor division so that times before 1970 still round down. */
    secs = (time_t)(ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000));
    if (gmtime_r(&secs, &tm) == NULL) {
        buf[0] = '\0';
        return;
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Fills buf with random bytes. getrandom(2) may return short reads for large
 * requests or fail with EINTR; ids must never reuse stale stack bytes, so on
 * a hard failure we still mix in the clock rather than leave zeros. */
static void
fill_random(uint8_t *buf, size_t len)
{
    size_t got = 0;
    int tries = 0;

    while (got < len && tries < 100) {
        ssize_t n = getrandom(buf + got, len - got, 0);
        if (n > 0) {
            got += (size_t)n;
        } else if (n < 0 && errno != EINTR) {
            break;
        }
        tries++;
    }
    if (got < len) {
        uint64_t x = (uint64_t)rf_mono_ns() ^ ((uint64_t)rf_now_ms() << 20);
        for (size_t i = got; i < len; i++) {
            /* splitmix64 step: not secure, only a last resort to stay unique */
            x += 0x9e3779b97f4a7c15ULL;
            uint64_t z = x;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            buf[i] = (uint8_t)(z ^ (z >> 31));
        }
    }
}

void
rf_new_id(const char *prefix, char *buf, size_t len)
{
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    size_t plen;
    uint64_t t;
    uint8_t rnd[10];
    char *p;

    if (buf == NULL || len == 0) {
        return;
    }
    if (prefix == NULL) {
        prefix = "";
    }
    plen = strlen(prefix);
    if (len < plen + 27) {
        /* Too small to hold a full id: never hand out a truncated one. */
        buf[0] = '\0';
        return;
    }
    memcpy(buf, prefix, plen);
    p = buf + plen;

    /* 48-bit millisecond time in 10 base32 digits (50 bits, top 2 zero),
     * most significant first, so ids sort by creation time as strings. */
    t = (uint64_t)rf_now_ms() & 0xFFFFFFFFFFFFULL;
    for (int i = 9; i >= 0; i--) {
        p[i] = alphabet[t & 31];
        t >>= 5;
    }
    /* 80 random bits in 16 digits: two 40-bit halves of 8 digits each. */
    fill_random(rnd, sizeof(rnd));
    for (int half = 0; half < 2; half++) {
        uint64_t r = 0;
        for (int i = 0; i < 5; i++) {
            r = (r << 8) | rnd[half * 5 + i];
        }
        for (int i = 7; i >= 0; i--) {
            p[10 + half * 8 + i] = alphabet[r & 31];
            r >>= 5;
        }
    }
    p[26] = '\0';
}

rf_err
rf_sha256_file(const char *path, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    rf_err rv = RF_OK;
    FILE *f = NULL;
    EVP_MD_CTX *ctx = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    unsigned char chunk[65536];
    size_t n;

    if (path == NULL || hex == NULL) {
        return RF_EINVAL;
    }
    hex[0] = '\0';
    f = fopen(path, "rb");
    if (f == NULL) {
        rv = errno == ENOENT ? RF_ENOTFOUND : RF_EIO;
        goto out;
    }
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rv = RF_EIO;
        goto out;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (EVP_DigestUpdate(ctx, chunk, n) != 1) {
            rv = RF_EIO;
            goto out;
        }
    }
    if (ferror(f)) {
        rv = RF_EIO;
        goto out;
    }
    if (EVP_DigestFinal_ex(ctx, md, &md_len) != 1 || md_len != 32) {
        rv = RF_EIO;
        goto out;
    }
    for (unsigned int i = 0; i < md_len; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
out:
    EVP_MD_CTX_free(ctx);
    if (f != NULL) {
        fclose(f);
    }
    return rv;
}

rf_err
rf_mkdirs(const char *path)
{
    rf_err rv = RF_OK;
    char *tmp = NULL;
    size_t n;
    struct stat st;

    if (path == NULL || path[0] == '\0') {
        return RF_EINVAL;
    }
    tmp = strdup(path);
    if (tmp == NULL) {
        return RF_ENOMEM;
    }
    n = strlen(tmp);
    while (n > 1 && tmp[n - 1] == '/') {
        tmp[--n] = '\0';
    }
    /* Create each prefix in turn; EEXIST is fine as long as it is a dir. */
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0') {
            continue;
        }
        char saved = tmp[i];
        tmp[i] = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
            rv = RF_EIO;
            goto out;
        }
        tmp[i] = saved;
    }
    if (stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rv = RF_EIO;
        goto out;
    }
out:
    free(tmp);
    return rv;
}

rf_err
rf_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len)
{
    rf_err rv = RF_OK;
    FILE *f = NULL;
    char *buf = NULL;
    size_t cap = 0, len = 0;

    if (out == NULL || path == NULL) {
        return RF_EINVAL;
    }
    *out = NULL;
    if (out_len != NULL) {
        *out_len = 0;
    }
    /* Keep max_bytes + 1 (and the NUL after it) from overflowing. */
    if (max_bytes > SIZE_MAX / 2) {
        max_bytes = SIZE_MAX / 2;
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        rv = errno == ENOENT ? RF_ENOTFOUND : RF_EIO;
        goto out;
    }
    /* Read in growing chunks rather than trusting st_size: pipes and /proc
     * files report 0, and a file may grow while we read it. We read at most
     * max_bytes + 1 bytes, which is enough to detect "too big". */
    for (;;) {
        if (len == cap) {
            size_t ncap = cap == 0 ? 4096 : cap * 2;
            if (ncap > max_bytes + 1) {
                ncap = max_bytes + 1;
            }
            if (ncap <= cap) {
                rv = RF_ETOOBIG;
                goto out;
            }
            char *nb = realloc(buf, ncap + 1);
            if (nb == NULL) {
                rv = RF_ENOMEM;
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (len > max_bytes) {
            rv = RF_ETOOBIG;
            goto out;
        }
        if (n == 0) {
            break;
        }
    }
    if (ferror(f)) {
        rv = RF_EIO;
        goto out;
    }
    if (buf == NULL) {
        buf = malloc(1);
        if (buf == NULL) {
            rv = RF_ENOMEM;
            goto out;
        }
    }
    buf[len] = '\0';
    *out = buf;
    buf = NULL;
    if (out_len != NULL) {
        *out_len = len;
    }
out:
    free(buf);
    if (f != NULL) {
        fclose(f);
    }
    return rv;
}

rf_err
rf_fmt(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (buf == NULL || len == 0) {
        return RF_EINVAL;
    }
    va_start(ap, fmt);
    n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        buf[0] = '\0';
        return RF_EINVAL;
    }
    if ((size_t)n >= len) {
        return RF_ETOOBIG;
    }
    return RF_OK;
}

rf_err
rf_strlcpy(char *dst, const char *src, size_t len)
{
    size_t n;

    if (dst == NULL || len == 0) {
        return RF_EINVAL;
    }
    if (src == NULL) {
        src = "";
    }
    n = strlen(src);
    if (n >= len) {
        memcpy(dst, src, len - 1);
        dst[len - 1] = '\0';
        return RF_ETOOBIG;
    }
    memcpy(dst, src, n + 1);
    return RF_OK;
}

void
rf_errf(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

size_t
rf_utf8_chars(const char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            n++;
        }
    }
    return n;
}

bool
rf_str_in_list(const char *s, const char *const *list)
{
    for (; *list != NULL; list++) {
        if (strcmp(s, *list) == 0) {
            return true;
        }
    }
    return false;
}

size_t
rf_bodybuf_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    rf_bodybuf *b = userdata;
    size_t n = size * nmemb;
    char *grown;

    if (n > b->max || b->len > b->max - n) {
        b->too_big = true;
        return 0;
    }
    grown = realloc(b->data, b->len + n + 1);
    if (grown == NULL) {
        return 0;
    }
    b->data = grown;
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}
