/* Row validation at the user guide's three levels, over the uniform row table
 * (rows.h) that every input source produces:
 *
 *   strict      every one of the ten columns is required ("All fields
 *               required, data types checked"); duration_seconds is digits
 *               only, 1..3600; platforms, voice, style and priority must be
 *               known values; titles may not hold control characters.
 *   moderate    (the default) idea_title and script_content are required and
 *               the other fields are checked when present: duration a whole
 *               number 1..3600, platforms known, voice / style / priority
 *               known, length limits. These are exactly the checks and the
 *               messages of jobs.c's row planning, so jobs.c can call
 *               rf_validate_row instead of its own copy.
 *   permissive  process what we can: a row is refused only when it has
 *               neither idea_title nor script_content. A missing title is
 *               taken from the script's first words, a missing script from
 *               the description or the title; bad or unknown values are
 *               replaced by defaults (duration 300, platform youtube, template
 *               voice and style, priority normal), over-long text is cut at a
 *               character boundary, text that is not UTF-8 is dropped. Each
 *               such repair is reported as a warning.
 *
 * A row whose every cell is blank is skipped (counted), never refused. Every
 * refusal starts "row N: " (N is the sheet row) and names the field.
 *
 * Ownership: rf_row_check owns its data object; release it with
 * rf_row_check_clear. */
#ifndef RF_VALIDATE_H
#define RF_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "rf_err.h"
#include "rf_proto.h"
#include "rows.h"

typedef enum rf_vlevel {
    RF_VLEVEL_STRICT = 0,
    RF_VLEVEL_MODERATE = 1,
    RF_VLEVEL_PERMISSIVE = 2,
} rf_vlevel;

#define RF_VALIDATE_DEFAULT_DURATION_S 300
#define RF_VALIDATE_MAX_DURATION_S 3600
#define RF_VALIDATE_MAX_PLATFORMS 7 /* the known platform names */

/* "strict" / "moderate" / "permissive", case-insensitive; NULL or "" is
 * moderate. False for anything else (*out untouched). */
bool rf_vlevel_parse(const char *s, rf_vlevel *out);
const char *rf_vlevel_name(rf_vlevel level);

typedef struct rf_row_check {
    uint32_t row_number;
    bool skipped;                /* every cell blank */
    char error[RF_ERRMSG_MAX];   /* "" when accepted; "row N: field ...; field ..." */
    char error_field[32];        /* the first refused field, "" when accepted */
    char warning[RF_ERRMSG_MAX]; /* repairs made (permissive), "row N: ..." or "" */
    json_t *data;                /* normalised fields by canonical name (always an object) */
    const char *title;           /* data's idea_title, "" when none; valid while data lives */
    int priority;                /* 0 low, 1 normal, 2 high */
    uint32_t duration_s;         /* 300 when absent */
    size_t n_platforms;          /* >= 1 when accepted */
    const char *platforms[RF_VALIDATE_MAX_PLATFORMS]; /* canonical names (static), first
                                                         mention order, no duplicates */
} rf_row_check;

/* Validates one row at a level into *out (zeroed first). The outcome is in
 * out->skipped / out->error; the return value is RF_ENOMEM only (out is then
 * cleared). data holds: the trimmed text fields, duration_seconds as an
 * integer when valid, voice_preference / style_override / priority lowercased
 * when valid, and the repaired values at the permissive level. */
rf_err rf_validate_row(const rf_row *row, rf_vlevel level, rf_row_check *out);

/* Frees data and zeroes *c. NULL-safe. */
void rf_row_check_clear(rf_row_check *c);

/* The known platform names, and whether one is known (exact, lowercase). */
bool rf_validate_platform_known(const char *name);

typedef struct rf_validation {
    size_t accepted, refused, skipped; /* row counts */
    size_t repaired;                   /* accepted rows with a warning */
    json_t *errors;                    /* array of {"row", "field", "message"}, capped */
    json_t *warnings;                  /* array of "row N: ..." strings, capped */
} rf_validation;

/* Validates every row, collecting at most max_messages errors and as many
 * warnings (counts stay exact; a final "... and N more" entry says what was
 * left out). *out is zeroed first; RF_ENOMEM leaves it cleared. */
rf_err rf_validate_rows(const rf_rows *rows, rf_vlevel level, size_t max_messages,
                        rf_validation *out);

/* Frees the arrays and zeroes *v. NULL-safe. */
void rf_validation_clear(rf_validation *v);

/* A JSON string of s with every byte that is not part of valid UTF-8
 * replaced by U+FFFD: messages quote cells ("got '%.32s'") and may cut a
 * character or carry bytes that are not text. New reference; NULL only on
 * allocation failure. */
json_t *rf_json_string_lossy(const char *s);

#endif
