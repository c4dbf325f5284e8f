/* Page tokens. */
#include "cursor.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"

static const char sort_chars[] = {'c', 'u', 'p'};

rf_err
rf_cursor_job_encode(rf_job_sort sort, bool desc, const char *state, int64_t key, const char *id,
                     char *out, size_t len)
{
    char plain[192];
    int n;

    if ((unsigned)sort > 2) {
        return RF_EINVAL;
    }
    n = snprintf(plain, sizeof(plain), "j1|%c|%c|%s|%lld|%s", sort_chars[sort], desc ? 'd' : 'a',
                 state != NULL && state[0] != '\0' ? state : "-", (long long)key, id);
    if (n < 0 || (size_t)n >= sizeof(plain)) {
        return RF_ETOOBIG;
    }
    return rf_b64url_encode(plain, (size_t)n, out, len);
}

rf_err
rf_cursor_job_decode(const char *token, rf_job_sort sort, bool desc, const char *state,
                     int64_t *key, char id[RF_ID_MAX])
{
    char plain[192], want[96];
    size_t n = 0, wn;
    const char *k, *bar;
    char *end = NULL;
    long long v;

    if ((unsigned)sort > 2 || token == NULL ||
        rf_b64url_decode(token, strlen(token), plain, sizeof(plain) - 1, &n) != RF_OK) {
        return RF_EINVAL;
    }
    plain[n] = '\0';
    if (memchr(plain, '\0', n) != NULL) {
        return RF_EINVAL;
    }
    wn = (size_t)snprintf(want, sizeof(want), "j1|%c|%c|%s|", sort_chars[sort], desc ? 'd' : 'a',
                          state != NULL && state[0] != '\0' ? state : "-");
    if (wn >= sizeof(want) || strncmp(plain, want, wn) != 0) {
        return RF_EINVAL;
    }
    k = plain + wn;
    if (!(isdigit((unsigned char)*k) || (*k == '-' && isdigit((unsigned char)k[1])))) {
        return RF_EINVAL;
    }
    errno = 0;
    v = strtoll(k, &end, 10);
    if (errno != 0 || *end != '|') {
        return RF_EINVAL;
    }
    bar = end + 1;
    if (strlen(bar) == 0 || strlen(bar) >= RF_ID_MAX || strchr(bar, '|') != NULL) {
        return RF_EINVAL;
    }
    for (const char *p = bar; *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-') {
            return RF_EINVAL;
        }
    }
    *key = (int64_t)v;
    memcpy(id, bar, strlen(bar) + 1);
    return RF_OK;
}

rf_err
rf_cursor_row_encode(uint32_t row, char *out, size_t len)
{
    char plain[32];
    int n = snprintf(plain, sizeof(plain), "r:%u", row);

    return rf_b64url_encode(plain, (size_t)n, out, len);
}

rf_err
rf_cursor_row_decode(const char *token, uint32_t *row)
{
    char plain[32];
    size_t n = 0;
    char *end = NULL;
    unsigned long v;

    if (token == NULL ||
        rf_b64url_decode(token, strlen(token), plain, sizeof(plain) - 1, &n) != RF_OK) {
        return RF_EINVAL;
    }
    plain[n] = '\0';
    if (n < 3 || strncmp(plain, "r:", 2) != 0 || !isdigit((unsigned char)plain[2])) {
        return RF_EINVAL;
    }
    errno = 0;
    v = strtoul(plain + 2, &end, 10);
    if (errno != 0 || *end != '\0' || v > UINT32_MAX) {
        return RF_EINVAL;
    }
    *row = (uint32_t)v;
    return RF_OK;
}
