/* A1 notation as the Google Sheets API accepts it in values.get and
 * values.batchUpdate ranges:
 *
 *   A1:Z1000        a block                 (columns 1..26, rows 1..1000)
 *   A2:J            open-ended rows         (columns 1..10, rows 2..end)
 *   A:J             whole columns           (columns 1..10, rows 1..end)
 *   1:2             whole rows              (columns 1..end, rows 1..2)
 *   B7              one cell
 *   Sheet1!A1:J50   a tab, then any of the above
 *   'My Sheet'!A:A  a quoted tab name; '' inside quotes is one apostrophe
 *   Sheet1          a bare tab name: the whole tab
 *
 * Column letters are case-insensitive and '$' (absolute reference) is
 * ignored; reversed corners (B5:A1) are normalised. A bare word that reads as
 * a cell ("AB12") is a cell, as Google reads it: a tab with such a name must
 * be quoted.
 *
 * Everything here is pure (no I/O, no allocation). */
#ifndef RF_A1_H
#define RF_A1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rf_err.h"

#define RF_A1_SHEET_MAX 404     /* tab names: 100 characters, up to 4 UTF-8 bytes each */
#define RF_A1_TEXT_MAX 512      /* a formatted range, incl. NUL */
#define RF_A1_MAX_COL 18278u    /* ZZZ, Google's largest column */
#define RF_A1_MAX_ROW 10000000u /* Google's cell limit bounds the row number */

typedef struct rf_a1_range {
    char sheet[RF_A1_SHEET_MAX]; /* unquoted tab name; "" = the first tab */
    uint32_t col_start;          /* 1-based first column */
    uint32_t col_end;            /* last column, 0 = open (to the tab's last column) */
    uint32_t row_start;          /* 1-based first row */
    uint32_t row_end;            /* last row, 0 = open (to the tab's last row) */
} rf_a1_range;

/* Parses text (surrounding blanks ignored) into *out. RF_EINVAL with a reason
 * in err (may be NULL) when text is not A1 notation; *out is then zeroed. */
rf_err rf_a1_parse(const char *text, rf_a1_range *out, char *err, size_t err_len);

/* Formats r back into A1 notation ("'My Sheet'!A2:J", "Sheet1!A1:J50"), quoting
 * the tab name when Google needs it. RF_ETOOBIG if buf is too small. */
rf_err rf_a1_format(const rf_a1_range *r, char *buf, size_t len);

/* Rows the range spans, or 0 when it is open-ended (row_end == 0). */
uint32_t rf_a1_row_count(const rf_a1_range *r);

/* Refuses (RF_ETOOBIG, reason in err) a bounded range spanning more than
 * max_data_rows + 1 rows (one header row on top of the data rows). Open-ended
 * ranges pass: their size is known only once read. */
rf_err rf_a1_check_rows(const rf_a1_range *r, uint32_t max_data_rows, char *err, size_t err_len);

/* Column number (1-based, <= RF_A1_MAX_COL) to letters; out holds 4 bytes.
 * Writes "" for 0 or a number past ZZZ. */
void rf_a1_col_name(uint32_t col, char out[4]);

/* Letters ("K", "aa", "$M") to a column number; 0 when s is not 1..3 letters
 * naming a column <= ZZZ. */
uint32_t rf_a1_col_parse(const char *s);

/* Appends the tab name to buf as Google wants it before '!' (quoted with ''
 * escapes when needed, as is otherwise). RF_ETOOBIG if it does not fit. */
rf_err rf_a1_format_sheet(const char *sheet, char *buf, size_t len);

#endif
