/* RFC 4180 reader: a byte-at-a-time state machine building cells in a
 * growable buffer. */
#include "csv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cell_buf {
    char *data;
    size_t len;
    size_t cap;
} cell_buf;

typedef struct parser {
    const rf_csv_limits *lim;
    rf_csv_table *t;
    cell_buf cell;
    rf_csv_record rec; /* record being built */
    size_t rec_cap;
    char *err;
    size_t err_len;
} parser;

static void set_err(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
set_err(parser *p, const char *fmt, ...)
{
    va_list ap;

    if (p->err == NULL || p->err_len == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(p->err, p->err_len, fmt, ap);
    va_end(ap);
}

static void
record_free(rf_csv_record *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->cells[i]);
    }
    free(r->cells);
    r->cells = NULL;
    r->n = 0;
}

static rf_err
cell_push(parser *p, char c)
{
    if (p->cell.len >= p->lim->max_field_bytes) {
        set_err(p, "record %zu: a field is longer than %zu bytes", p->t->n + 1,
                p->lim->max_field_bytes);
        return RF_ETOOBIG;
    }
    if (p->cell.len + 1 >= p->cell.cap) {
        size_t cap = p->cell.cap == 0 ? 64 : p->cell.cap * 2;
        char *grown = realloc(p->cell.data, cap);
        if (grown == NULL) {
            return RF_ENOMEM;
        }
        p->cell.data = grown;
        p->cell.cap = cap;
    }
    p->cell.data[p->cell.len++] = c;
    return RF_OK;
}

/* Moves the current cell into the current record. */
static rf_err
end_cell(parser *p)
{
    char *s;

    if (p->rec.n >= p->lim->max_cols) {
        set_err(p, "record %zu: more than %zu fields", p->t->n + 1, p->lim->max_cols);
        return RF_ETOOBIG;
    }
    if (p->rec.n == p->rec_cap) {
        size_t cap = p->rec_cap == 0 ? 16 : p->rec_cap * 2;
        char **grown = realloc(p->rec.cells, cap * sizeof(*grown));
        if (grown == NULL) {
            return RF_ENOMEM;
        }
        p->rec.cells = grown;
        p->rec_cap = cap;
    }
    s = malloc(p->cell.len + 1);
    if (s == NULL) {
        return RF_ENOMEM;
    }
    if (p->cell.len > 0) {
        memcpy(s, p->cell.data, p->cell.len);
    }
    s[p->cell.len] = '\0';
    p->rec.cells[p->rec.n++] = s;
    p->cell.len = 0;
    return RF_OK;
}

/* Moves the current record into the table. */
static rf_err
end_record(parser *p)
{
    rf_csv_table *t = p->t;

    if (t->n >= p->lim->max_records) {
        set_err(p, "more than %zu records", p->lim->max_records);
        return RF_ETOOBIG;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap == 0 ? 16 : t->cap * 2;
        rf_csv_record *grown = realloc(t->recs, cap * sizeof(*grown));
        if (grown == NULL) {
            return RF_ENOMEM;
        }
        t->recs = grown;
        t->cap = cap;
    }
    t->recs[t->n++] = p->rec;
    memset(&p->rec, 0, sizeof(p->rec));
    p->rec_cap = 0;
    return RF_OK;
}

static bool
record_is_empty(const rf_csv_record *r)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->cells[i][0] != '\0') {
            return false;
        }
    }
    return true;
}

void
rf_csv_table_free(rf_csv_table *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->n; i++) {
        record_free(&t->recs[i]);
    }
    free(t->recs);
    memset(t, 0, sizeof(*t));
}

rf_err
rf_csv_parse(const char *buf, size_t len, const rf_csv_limits *lim, rf_csv_table *out, char *err,
             size_t err_len)
{
    enum { FIELD_START, UNQUOTED, QUOTED, QUOTE_IN_QUOTED, AFTER_CR } st = FIELD_START;
    parser p = {.lim = lim, .t = out, .err = err, .err_len = err_len};
    size_t i = 0;
    size_t quote_record = 0;
    bool in_record = false; /* something of the current record was seen */
    rf_err rv = RF_OK;

    memset(out, 0, sizeof(*out));
    if (err != NULL && err_len > 0) {
        err[0] = '\0';
    }
    if (len >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB &&
        (unsigned char)buf[2] == 0xBF) {
        i = 3;
    }
    for (; i < len; i++) {
        char c = buf[i];

        if (st == AFTER_CR) {
            /* The record already ended at the CR; swallow the LF of a CRLF. */
            st = FIELD_START;
            if (c == '\n') {
                continue;
            }
        }
        switch (st) {
        case FIELD_START:
            if (c == '"') {
                st = QUOTED;
                quote_record = out->n + 1;
                in_record = true;
                break;
            }
            /* fall through: an unquoted field starts with this byte */
            st = UNQUOTED;
            /* FALLTHROUGH */
        case UNQUOTED:
            if (c == ',') {
                rv = end_cell(&p);
                st = FIELD_START;
                in_record = true;
            } else if (c == '\n' || c == '\r') {
                rv = end_cell(&p);
                if (rv == RF_OK) {
                    rv = end_record(&p);
                }
                st = c == '\r' ? AFTER_CR : FIELD_START;
                in_record = false;
            } else {
                rv = cell_push(&p, c);
                in_record = true;
            }
            break;
        case QUOTED:
            if (c == '"') {
                st = QUOTE_IN_QUOTED;
            } else {
                rv = cell_push(&p, c);
            }
            break;
        case QUOTE_IN_QUOTED:
            if (c == '"') {
                rv = cell_push(&p, '"');
                st = QUOTED;
            } else if (c == ',') {
                rv = end_cell(&p);
                st = FIELD_START;
            } else if (c == '\n' || c == '\r') {
                rv = end_cell(&p);
                if (rv == RF_OK) {
                    rv = end_record(&p);
                }
                st = c == '\r' ? AFTER_CR : FIELD_START;
                in_record = false;
            } else {
                /* Lenient: text after the closing quote joins the field. */
                rv = cell_push(&p, c);
                st = UNQUOTED;
            }
            break;
        case AFTER_CR:
            break; /* handled above */
        }
        if (rv != RF_OK) {
            goto out;
        }
    }
    if (st == QUOTED) {
        set_err(&p, "record %zu: unterminated quoted field", quote_record);
        rv = RF_EINVAL;
        goto out;
    }
    if (in_record || st == QUOTE_IN_QUOTED) {
        rv = end_cell(&p);
        if (rv == RF_OK) {
            rv = end_record(&p);
        }
        if (rv != RF_OK) {
            goto out;
        }
    }
    while (out->n > 0 && record_is_empty(&out->recs[out->n - 1])) {
        record_free(&out->recs[--out->n]);
    }
out:
    if (rv == RF_ENOMEM) {
        set_err(&p, "out of memory");
    }
    free(p.cell.data);
    record_free(&p.rec);
    if (rv != RF_OK) {
        rf_csv_table_free(out);
    }
    return rv;
}

static bool
is_header(const rf_csv_record *r)
{
    size_t known = 0, nonempty = 0;

    for (size_t i = 0; i < r->n; i++) {
        if (r->cells[i][0] == '\0') {
            continue;
        }
        nonempty++;
        if (rf_field_lookup(r->cells[i]) >= 0) {
            known++;
        }
    }
    return known >= 2 || (known >= 1 && known == nonempty);
}

rf_err
rf_csv_to_rows(const rf_csv_table *t, rf_rows *out, bool *had_header)
{
    int map[RF_F_COUNT]; /* field -> column index, -1 if absent */
    bool header = t->n > 0 && is_header(&t->recs[0]);
    size_t first = header ? 1 : 0;
    rf_err rv = RF_OK;

    memset(out, 0, sizeof(*out));
    for (int f = 0; f < RF_F_COUNT; f++) {
        map[f] = header ? -1 : f;
    }
    if (header) {
        const rf_csv_record *h = &t->recs[0];
        for (size_t c = 0; c < h->n; c++) {
            int f = rf_field_lookup(h->cells[c]);
            if (f >= 0 && map[f] < 0) {
                map[f] = (int)c; /* first column with a name wins */
            }
        }
    }
    for (size_t r = first; r < t->n; r++) {
        const rf_csv_record *rec = &t->recs[r];
        rf_row *row;

        rv = rf_rows_add(out, (uint32_t)(r + 1), &row);
        if (rv != RF_OK) {
            goto out;
        }
        for (int f = 0; f < RF_F_COUNT; f++) {
            const char *cell;
            if (map[f] < 0 || (size_t)map[f] >= rec->n) {
                continue; /* ragged row: missing cells are absent */
            }
            cell = rec->cells[map[f]];
            rv = rf_row_set(row, (rf_field)f, cell, strlen(cell));
            if (rv != RF_OK) {
                goto out;
            }
        }
    }
    if (had_header != NULL) {
        *had_header = header;
    }
out:
    if (rv != RF_OK) {
        rf_rows_free(out);
    }
    return rv;
}

rf_err
rf_csv_read_rows(const char *buf, size_t len, const rf_csv_limits *lim, size_t max_rows,
                 rf_rows *out, char *err, size_t err_len)
{
    rf_csv_table t = {0};
    rf_err rv;

    memset(out, 0, sizeof(*out));
    rv = rf_csv_parse(buf, len, lim, &t, err, err_len);
    if (rv != RF_OK) {
        goto out;
    }
    rv = rf_csv_to_rows(&t, out, NULL);
    if (rv != RF_OK) {
        snprintf(err, err_len, "out of memory");
        goto out;
    }
    if (out->n > max_rows) {
        snprintf(err, err_len, "%zu data rows, more than the limit of %zu", out->n, max_rows);
        rf_rows_free(out);
        rv = RF_ETOOBIG;
        goto out;
    }
out:
    rf_csv_table_free(&t);
    return rv;
}
