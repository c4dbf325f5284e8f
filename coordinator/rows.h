/* The uniform row table every input source produces (CSV file or URL, inline
 * JSON rows, later Google Sheets): one entry per data row of the source with
 * the ten fields of the user guide's sheet layout. Readers fill it; the job
 * domain (jobs.h) validates it row by row.
 *
 * Ownership: an rf_rows owns its rows and every field string; release it with
 * rf_rows_free(). */
#ifndef RF_ROWS_H
#define RF_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "rf_err.h"

/* The sheet columns in the user guide's order: column A is RF_F_IDEA_TITLE,
 * column J is RF_F_PRIORITY. */
typedef enum rf_field {
    RF_F_IDEA_TITLE = 0,
    RF_F_DESCRIPTION,
    RF_F_TARGET_AUDIENCE,
    RF_F_TONE,
    RF_F_DURATION_SECONDS,
    RF_F_PLATFORM_PREFERENCES,
    RF_F_SCRIPT_CONTENT,
    RF_F_VOICE_PREFERENCE,
    RF_F_STYLE_OVERRIDE,
    RF_F_PRIORITY,
    RF_F_COUNT
} rf_field;

typedef struct rf_row {
    uint32_t row_number;      /* 1-based sheet row (a header is row 1) */
    char *fields[RF_F_COUNT]; /* heap strings or NULL when absent */
} rf_row;

typedef struct rf_rows {
    rf_row *rows;
    size_t n;
    size_t cap;
} rf_rows;

/* Canonical field name ("idea_title", ...); NULL if f is out of range. */
const char *rf_field_name(rf_field f);

/* Maps a header cell or JSON key to a field. Matching ignores case and every
 * character that is not a letter or digit ("Idea Title", "idea_title" and
 * "IDEA-TITLE" are the same), and accepts the guide's human column names
 * ("Idea/Title", "Duration (seconds)", "Script Content", "Style", ...).
 * Returns -1 when the name is not a known field. */
int rf_field_lookup(const char *name);

/* Appends an empty row (all fields NULL) and returns it through *out.
 * RF_ENOMEM on allocation failure (the table is unchanged). */
rf_err rf_rows_add(rf_rows *rows, uint32_t row_number, rf_row **out);

/* Sets a field of a row to a copy of value[0..len) (NUL added).
 * Replaces a previous value. RF_ENOMEM on allocation failure. */
rf_err rf_row_set(rf_row *row, rf_field f, const char *value, size_t len);

/* Frees every row and zeroes *rows. NULL-safe, idempotent. */
void rf_rows_free(rf_rows *rows);

#endif
