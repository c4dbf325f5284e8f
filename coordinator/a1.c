/* A1 notation: a tab part (quoted or bare) and a reference of one or two
 * tokens, each a cell ("B7"), a column ("J") or a row ("12"). */
#include "a1.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rf_util.h"

typedef enum tok_kind { TOK_BAD = 0, TOK_CELL, TOK_COL, TOK_ROW } tok_kind;

typedef struct tok {
    tok_kind kind;
    uint32_t col; /* 0 for TOK_ROW */
    uint32_t row; /* 0 for TOK_COL */
} tok;

/* Reads one token from s[0..len): [$]LETTERS[$]DIGITS, either part optional
 * but not both. */
static tok
parse_tok(const char *s, size_t len)
{
    tok t = {TOK_BAD, 0, 0};
    size_t i = 0, letters = 0, digits = 0;
    uint64_t col = 0, row = 0;

    if (i < len && s[i] == '$') {
        i++;
    }
    while (i < len && isalpha((unsigned char)s[i]) && (unsigned char)s[i] < 0x80) {
        if (++letters > 3) {
            return t;
        }
        col = col * 26 + (uint64_t)(toupper((unsigned char)s[i]) - 'A' + 1);
        i++;
    }
    if (i < len && s[i] == '$') {
        if (letters == 0) {
            return t; /* "$$1" */
        }
        i++;
    }
    while (i < len && isdigit((unsigned char)s[i])) {
        if (++digits > 8) {
            return t;
        }
        row = row * 10 + (uint64_t)(s[i] - '0');
        i++;
    }
    if (i != len || (letters == 0 && digits == 0)) {
        return t;
    }
    if (letters > 0 && col > RF_A1_MAX_COL) {
        return t;
    }
    if (digits > 0 && (row == 0 || row > RF_A1_MAX_ROW)) {
        return t;
    }
    t.col = (uint32_t)col;
    t.row = (uint32_t)row;
    t.kind = letters > 0 && digits > 0 ? TOK_CELL : letters > 0 ? TOK_COL : TOK_ROW;
    return t;
}

/* Parses a reference ("A1:Z9", "A2:J", "A:J", "1:2", "B7") into the corners
 * of *r. Returns false when ref[0..len) is not one. */
static bool
parse_ref(const char *ref, size_t len, rf_a1_range *r)
{
    const char *colon = memchr(ref, ':', len);
    tok a, b;

    if (colon == NULL) {
        a = parse_tok(ref, len);
        if (a.kind != TOK_CELL) {
            return false;
        }
        r->col_start = r->col_end = a.col;
        r->row_start = r->row_end = a.row;
        return true;
    }
    a = parse_tok(ref, (size_t)(colon - ref));
    b = parse_tok(colon + 1, len - (size_t)(colon - ref) - 1);
    if (a.kind == TOK_CELL && b.kind == TOK_CELL) {
        r->col_start = a.col < b.col ? a.col : b.col;
        r->col_end = a.col < b.col ? b.col : a.col;
        r->row_start = a.row < b.row ? a.row : b.row;
        r->row_end = a.row < b.row ? b.row : a.row;
        return true;
    }
    if ((a.kind == TOK_CELL || a.kind == TOK_COL) && b.kind == TOK_COL) {
        /* "A2:J" starts at the cell's row; "A:J" at row 1. Both run to the end. */
        r->col_start = a.col < b.col ? a.col : b.col;
        r->col_end = a.col < b.col ? b.col : a.col;
        r->row_start = a.kind == TOK_CELL ? a.row : 1;
        r->row_end = 0;
        return true;
    }
    if (a.kind == TOK_ROW && b.kind == TOK_ROW) {
        r->col_start = 1;
        r->col_end = 0;
        r->row_start = a.row < b.row ? a.row : b.row;
        r->row_end = a.row < b.row ? b.row : a.row;
        return true;
    }
    return false;
}

static void set_err(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_len == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

rf_err
rf_a1_parse(const char *text, rf_a1_range *out, char *err, size_t err_len)
{
    const char *s = text != NULL ? text : "";
    const char *end;
    const char *ref = NULL;
    size_t ref_len = 0, n = 0;

    memset(out, 0, sizeof(*out));
    while (isspace((unsigned char)*s)) {
        s++;
    }
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1])) {
        end--;
    }
    if (end == s) {
        set_err(err, err_len, "range is empty (use A1 notation such as A1:J1000)");
        return RF_EINVAL;
    }
    if (*s == '\'') {
        /* Quoted tab name: '' stands for one apostrophe. */
        const char *p = s + 1;
        for (;;) {
            if (p >= end) {
                set_err(err, err_len, "unterminated quoted sheet name in range");
                goto bad;
            }
            if (*p == '\'') {
                if (p + 1 < end && p[1] == '\'') {
                    p++;
                } else {
                    break;
                }
            }
            if (n + 1 >= sizeof(out->sheet)) {
                set_err(err, err_len, "sheet name in range is too long");
                goto bad;
            }
            out->sheet[n++] = *p++;
        }
        out->sheet[n] = '\0';
        p++; /* closing quote */
        if (n == 0) {
            set_err(err, err_len, "empty sheet name in range");
            goto bad;
        }
        if (p < end && *p != '!') {
            set_err(err, err_len, "expected '!' after the quoted sheet name");
            goto bad;
        }
        if (p < end) {
            ref = p + 1;
            ref_len = (size_t)(end - ref);
        }
    } else {
        const char *bang = memchr(s, '!', (size_t)(end - s));
        if (bang != NULL) {
            n = (size_t)(bang - s);
            if (n == 0) {
                set_err(err, err_len, "empty sheet name before '!'");
                goto bad;
            }
            ref = bang + 1;
            ref_len = (size_t)(end - ref);
        } else {
            rf_a1_range probe;
            memset(&probe, 0, sizeof(probe));
            if (parse_ref(s, (size_t)(end - s), &probe)) {
                *out = probe;
                return RF_OK;
            }
            n = (size_t)(end - s);
            if (memchr(s, ':', n) != NULL) {
                set_err(err, err_len,
                        "'%.*s' is not A1 notation (use A1:J1000, A2:J, A:J or Sheet1!A1:J50)",
                        (int)(n > 64 ? 64 : n), s);
                goto bad;
            }
        }
        if (n >= sizeof(out->sheet)) {
            set_err(err, err_len, "sheet name in range is too long");
            goto bad;
        }
        if (memchr(s, '\'', n) != NULL) {
            set_err(err, err_len, "a sheet name with an apostrophe must be quoted: 'It''s'!A1");
            goto bad;
        }
        memcpy(out->sheet, s, n);
        out->sheet[n] = '\0';
    }
    if (ref == NULL) {
        /* A bare tab name: the whole tab. */
        out->col_start = 1;
        out->row_start = 1;
        return RF_OK;
    }
    if (ref_len == 0 || !parse_ref(ref, ref_len, out)) {
        set_err(err, err_len,
                "'%.*s' after the sheet name is not a cell range (use A1:J1000, A2:J, A:J or 1:2)",
                (int)(ref_len > 64 ? 64 : ref_len), ref);
        goto bad;
    }
    return RF_OK;
bad:
    memset(out, 0, sizeof(*out));
    return RF_EINVAL;
}

void
rf_a1_col_name(uint32_t col, char out[4])
{
    char rev[4];
    size_t n = 0;

    out[0] = '\0';
    if (col == 0 || col > RF_A1_MAX_COL) {
        return;
    }
    while (col > 0 && n < 3) {
        uint32_t d = (col - 1) % 26;
        rev[n++] = (char)('A' + d);
        col = (col - 1) / 26;
    }
    for (size_t i = 0; i < n; i++) {
        out[i] = rev[n - 1 - i];
    }
    out[n] = '\0';
}

uint32_t
rf_a1_col_parse(const char *s)
{
    tok t;

    if (s == NULL) {
        return 0;
    }
    t = parse_tok(s, strlen(s));
    return t.kind == TOK_COL ? t.col : 0;
}

/* A tab name Google reads without quotes: a letter or '_' then letters,
 * digits and '_', and not something that reads as a reference itself. */
static bool
sheet_is_plain(const char *sheet)
{
    size_t len = strlen(sheet);

    if (len == 0 || !(isalpha((unsigned char)sheet[0]) || sheet[0] == '_') ||
        (unsigned char)sheet[0] >= 0x80) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)sheet[i];
        if (c >= 0x80 || !(isalnum(c) || c == '_')) {
            return false;
        }
    }
    return parse_tok(sheet, len).kind == TOK_BAD;
}

rf_err
rf_a1_format_sheet(const char *sheet, char *buf, size_t len)
{
    size_t n = strlen(buf);

    if (sheet_is_plain(sheet)) {
        return rf_fmt(buf + n, len - n, "%s", sheet);
    }
    if (n + 1 >= len) {
        return RF_ETOOBIG;
    }
    buf[n++] = '\'';
    for (const char *p = sheet; *p != '\0'; p++) {
        size_t need = *p == '\'' ? 2 : 1;
        if (n + need + 1 >= len) {
            buf[len - 1] = '\0';
            return RF_ETOOBIG;
        }
        buf[n++] = *p;
        if (*p == '\'') {
            buf[n++] = '\'';
        }
    }
    buf[n++] = '\'';
    buf[n] = '\0';
    return RF_OK;
}

rf_err
rf_a1_format(const rf_a1_range *r, char *buf, size_t len)
{
    char c1[4], c2[4];
    size_t n;
    rf_err rv;

    if (len == 0) {
        return RF_ETOOBIG;
    }
    buf[0] = '\0';
    if (r->sheet[0] != '\0') {
        rv = rf_a1_format_sheet(r->sheet, buf, len);
        if (rv != RF_OK) {
            return rv;
        }
        if (r->col_start <= 1 && r->row_start <= 1 && r->col_end == 0 && r->row_end == 0) {
            return RF_OK; /* the whole tab */
        }
        rv = rf_fmt(buf + strlen(buf), len - strlen(buf), "!");
        if (rv != RF_OK) {
            return rv;
        }
    }
    n = strlen(buf);
    rf_a1_col_name(r->col_start, c1);
    rf_a1_col_name(r->col_end, c2);
    if (r->col_end == 0) {
        /* whole rows; an open end is written as Google's last row */
        return rf_fmt(buf + n, len - n, "%u:%u", r->row_start,
                      r->row_end == 0 ? RF_A1_MAX_ROW : r->row_end);
    }
    if (r->row_end == 0) {
        if (r->row_start <= 1) {
            return rf_fmt(buf + n, len - n, "%s:%s", c1, c2);
        }
        return rf_fmt(buf + n, len - n, "%s%u:%s", c1, r->row_start, c2);
    }
    if (r->col_start == r->col_end && r->row_start == r->row_end) {
        return rf_fmt(buf + n, len - n, "%s%u", c1, r->row_start);
    }
    return rf_fmt(buf + n, len - n, "%s%u:%s%u", c1, r->row_start, c2, r->row_end);
}

uint32_t
rf_a1_row_count(const rf_a1_range *r)
{
    if (r->row_end == 0 || r->row_end < r->row_start) {
        return 0;
    }
    return r->row_end - r->row_start + 1;
}

rf_err
rf_a1_check_rows(const rf_a1_range *r, uint32_t max_data_rows, char *err, size_t err_len)
{
    uint32_t rows = rf_a1_row_count(r);

    if (rows != 0 && (uint64_t)rows > (uint64_t)max_data_rows + 1) {
        set_err(err, err_len,
                "range spans %u rows, more than the limit of %u data rows plus a header row: "
                "split the sheet into several jobs",
                rows, max_data_rows);
        return RF_ETOOBIG;
    }
    return RF_OK;
}
