/* rfctl's output helpers. */
#include "cli_out.h"

#include <stdlib.h>
#include <string.h>
#include <wchar.h>

void
rf_cli_fmt_duration(int64_t ms, char *buf, size_t len)
{
    int64_t s;

    if (ms < 0) {
        snprintf(buf, len, "--");
        return;
    }
    s = (ms + 500) / 1000;
    if (s >= 3600) {
        snprintf(buf, len, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    } else if (s >= 60) {
        snprintf(buf, len, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
    } else {
        snprintf(buf, len, "%llds", (long long)s);
    }
}

/* Decodes one UTF-8 character at s; returns its byte length (1 for a byte
 * that does not start a valid sequence) and the code point. */
static size_t
utf8_next(const unsigned char *s, uint32_t *cp)
{
    size_t n;
    uint32_t c = s[0];

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        c &= 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        c &= 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        c &= 0x07;
    } else {
        *cp = 0xFFFD;
        return 1;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        c = (c << 6) | (s[i] & 0x3F);
    }
    *cp = c;
    return n;
}

static int
cp_width(uint32_t cp)
{
    int w = wcwidth((wchar_t)cp);

    if (w >= 0) {
        return w;
    }
    if (cp < 0x20 || cp == 0x7F) {
        return 1; /* control bytes are replaced when printed; count them */
    }
    /* The C locale knows no widths: count CJK and beyond as wide so that a
     * clipped line never wraps. */
    return cp >= 0x2E80 ? 2 : 1;
}

size_t
rf_cli_fit(const char *s, int cols)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t pos = 0;
    int used = 0;

    while (p[pos] != '\0') {
        uint32_t cp;
        size_t n = utf8_next(p + pos, &cp);
        int w = cp_width(cp);
        if (used + w > cols) {
            break;
        }
        used += w;
        pos += n;
    }
    return pos;
}

void
rf_cli_put_line(FILE *f, const char *s, int cols)
{
    size_t n = cols > 0 ? rf_cli_fit(s, cols) : strlen(s);

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        /* Titles come from users' sheets: a stray escape or newline must not
         * move the cursor and break the redraw. */
        fputc(c < 0x20 || c == 0x7F ? '?' : c, f);
    }
    fputc('\n', f);
}

const char *
rf_cli_str(const json_t *obj, const char *key, const char *def)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : def;
}

int64_t
rf_cli_int(const json_t *obj, const char *key, int64_t def)
{
    const json_t *v = json_object_get(obj, key);

    if (json_is_integer(v)) {
        return (int64_t)json_integer_value(v);
    }
    if (json_is_real(v)) {
        return (int64_t)json_real_value(v);
    }
    return def;
}

double
rf_cli_num(const json_t *obj, const char *key, double def)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : def;
}

void
rf_cli_print_error(FILE *f, const char *what, const rf_cli_resp *r)
{
    if (r->status == 0) {
        fprintf(f, "rfctl: %s: cannot reach the coordinator: %s\n", what,
                r->net_error[0] != '\0' ? r->net_error : "no answer");
        return;
    }
    fprintf(f, "rfctl: %s: HTTP %ld %s: %s\n", what, r->status, r->error_code, r->error_message);
    if (r->error_detail != NULL) {
        char *d = json_dumps(r->error_detail, JSON_COMPACT | JSON_SORT_KEYS);
        if (d != NULL) {
            fprintf(f, "  detail: %s\n", d);
            free(d);
        }
    }
    if (r->retry_after_s >= 0) {
        fprintf(f, "  retry after: %ld s\n", r->retry_after_s);
    }
    if (r->correlation_id[0] != '\0') {
        fprintf(f, "  correlation id: %s\n", r->correlation_id);
    }
}

int
rf_cli_exit_for(rf_err rv, const rf_cli_resp *r)
{
    if (rv == RF_ENET) {
        return RF_CLI_EXIT_NET;
    }
    if (rv != RF_OK || r->status >= 400) {
        return RF_CLI_EXIT_API;
    }
    return RF_CLI_EXIT_OK;
}
