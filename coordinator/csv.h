/* RFC 4180 CSV reader for sheet exports: quoted fields with "" escapes,
 * embedded commas and newlines, CRLF or LF (or lone CR) line ends, a leading
 * UTF-8 byte order mark skipped, ragged rows allowed. Bytes are kept as they
 * are (UTF-8 text of any script passes through unchanged).
 *
 * Leniency, on purpose: a quote inside an unquoted field is taken literally,
 * and characters between a closing quote and the next comma are appended.
 * An unterminated quoted field is an error. Completely empty records at the
 * end of the input are dropped (spreadsheet exports pad with them). */
#ifndef RF_CSV_H
#define RF_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include "rf_err.h"
#include "rows.h"

typedef struct rf_csv_limits {
    size_t max_field_bytes; /* one cell, after unquoting */
    size_t max_records;     /* records including a header */
    size_t max_cols;        /* cells in one record */
} rf_csv_limits;

typedef struct rf_csv_record {
    char **cells; /* heap strings, never NULL */
    size_t n;
} rf_csv_record;

typedef struct rf_csv_table {
    rf_csv_record *recs;
    size_t n;
    size_t cap;
} rf_csv_table;

/* Parses buf[0..len) into *out (zeroed first). On failure returns RF_EINVAL
 * (syntax) or RF_ETOOBIG (a limit), writes a reason naming the record into
 * err, and leaves *out empty. RF_ENOMEM on allocation failure. */
rf_err rf_csv_parse(const char *buf, size_t len, const rf_csv_limits *lim, rf_csv_table *out,
                    char *err, size_t err_len);

/* Frees the table and zeroes it. NULL-safe. */
void rf_csv_table_free(rf_csv_table *t);

/* Maps records to rows. When the first record is a header (at least two of
 * its cells, or all of its non-empty cells, are known field names, see
 * rf_field_lookup) columns map by name in any order, unknown columns are
 * ignored and data starts at sheet row 2; otherwise columns map by the guide's
 * letters A..J and the first record is sheet row 1. *had_header may be NULL.
 * RF_ENOMEM on allocation failure (*out left empty). */
rf_err rf_csv_to_rows(const rf_csv_table *t, rf_rows *out, bool *had_header);

/* rf_csv_parse + rf_csv_to_rows, refusing more than max_rows data rows
 * (RF_ETOOBIG with a reason). */
rf_err rf_csv_read_rows(const char *buf, size_t len, const rf_csv_limits *lim, size_t max_rows,
                        rf_rows *out, char *err, size_t err_len);

#endif
