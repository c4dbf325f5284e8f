/* libFuzzer target for what the Sheets input reads from outside (sheet cells
 * are attacker input): A1 ranges from requests, values.get answers, CSV
 * exports, Google error bodies, and everything built on them (the row
 * mapping, the three validation levels, the /sheets/connect report, the
 * write-back plan). Every input is tried as each of these. Invariants are
 * checked with abort(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "a1.h"
#include "rf_log.h"
#include "sheets.h"
#include "sheets_connect.h"
#include "validate.h"
#include "writeback.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

static void
fuzz_range(const char *text)
{
    rf_a1_range r, again;
    char buf[RF_A1_TEXT_MAX];

    if (rf_a1_parse(text, &r, NULL, 0) != RF_OK) {
        return;
    }
    check(r.col_start >= 1 && r.row_start >= 1, "range starts at 1");
    check(r.col_end == 0 || r.col_end >= r.col_start, "columns ordered");
    check(r.row_end == 0 || r.row_end >= r.row_start, "rows ordered");
    if (rf_a1_format(&r, buf, sizeof(buf)) == RF_OK) {
        check(rf_a1_parse(buf, &again, NULL, 0) == RF_OK, "formatted range parses");
        check(memcmp(&again, &r, sizeof(r)) == 0, "formatted range reads back the same");
    }
}

/* Rows, validation, the connect report and a write-back plan of values. */
static void
use_values(const rf_sheet_values *v)
{
    rf_rows rows;
    json_t *report = NULL;
    bool header;
    rf_wb_columns cols = {.state = 11, .url = 12, .error = 14};

    check(rf_sheet_values_to_rows(v, &rows, &header) == RF_OK, "rows");
    for (size_t i = 1; i < rows.n; i++) {
        check(rows.rows[i].row_number == rows.rows[i - 1].row_number + 1, "row numbers follow");
    }
    for (int l = RF_VLEVEL_STRICT; l <= RF_VLEVEL_PERMISSIVE; l++) {
        rf_validation val;
        check(rf_validate_rows(&rows, (rf_vlevel)l, 5, &val) == RF_OK, "validate");
        check(val.accepted + val.refused + val.skipped == rows.n, "every row counted");
        rf_validation_clear(&val);
    }
    check(rf_sheets_connect_report(v, "fuzz", "A1:J", RF_VLEVEL_MODERATE, 100, "", &report) ==
              RF_OK,
          "report");
    free(json_dumps(report, JSON_COMPACT));
    json_decref(report);
    if (rows.n > 0) {
        rf_wb_row *wb = calloc(rows.n, sizeof(*wb));
        json_t **bodies = NULL;
        size_t nb = 0, nr = 0;
        check(wb != NULL, "alloc");
        for (size_t i = 0; i < rows.n; i++) {
            wb[i].row_number = rows.rows[i].row_number;
            wb[i].state = rows.rows[i].fields[RF_F_IDEA_TITLE];
            wb[i].error = rows.rows[i].fields[RF_F_SCRIPT_CONTENT];
        }
        check(rf_wb_plan(v->sheet, &cols, wb, rows.n, 3, &bodies, &nb, &nr) == RF_OK, "plan");
        check(nr >= 2 && nb >= 1, "something planned");
        rf_wb_bodies_free(bodies, nb);
        free(wb);
    }
    rf_rows_free(&rows);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    rf_a1_range req;
    rf_sheet_values v;
    rf_gerror e;
    rf_sheets_errctx ctx = {.sheet_id = "fuzz",
                            .range = "A1:J",
                            .access = RF_SHEETS_ACCESS_SERVICE_ACCOUNT,
                            .client_email = "x@y.iam.gserviceaccount.com"};

    rf_log_init("fuzz", RF_LOG_ERROR);
    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    fuzz_range(text);
    check(rf_a1_parse("'Tab'!C3:L", &req, NULL, 0) == RF_OK, "fixed range");
    if (rf_sheets_values_parse(text, size, &req, 200, &v, &e) == RF_OK) {
        use_values(&v);
    }
    rf_sheet_values_clear(&v);
    if (rf_sheets_csv_values(text, size, &req, 200, &v, &e) == RF_OK) {
        use_values(&v);
    }
    rf_sheet_values_clear(&v);
    memset(&e, 0, sizeof(e));
    rf_sheets_map_error(400 + (long)(size % 200), text, size, &ctx, &e);
    check(e.code[0] != '\0' && e.message[0] != '\0', "every error has a code and a message");
    free(text);
    return 0;
}
