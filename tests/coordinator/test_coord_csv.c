/* The RFC 4180 reader and the header mapping. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "csv.h"

static const rf_csv_limits LIM = {.max_field_bytes = 1024, .max_records = 100, .max_cols = 32};

static void
parse_ok(const char *text, rf_csv_table *t)
{
    char err[256] = "";
    rf_err rv = rf_csv_parse(text, strlen(text), &LIM, t, err, sizeof(err));
    if (rv != RF_OK) {
        fail_msg("parse failed: %s", err);
    }
}

static void
test_quotes_commas_newlines(void **state)
{
    rf_csv_table t;

    (void)state;
    parse_ok("a,\"b,c\",\"say \"\"hi\"\"\"\n\"line1\nline2\",,x\n", &t);
    assert_int_equal(t.n, 2);
    assert_int_equal(t.recs[0].n, 3);
    assert_string_equal(t.recs[0].cells[0], "a");
    assert_string_equal(t.recs[0].cells[1], "b,c");
    assert_string_equal(t.recs[0].cells[2], "say \"hi\"");
    assert_int_equal(t.recs[1].n, 3);
    assert_string_equal(t.recs[1].cells[0], "line1\nline2");
    assert_string_equal(t.recs[1].cells[1], "");
    assert_string_equal(t.recs[1].cells[2], "x");
    rf_csv_table_free(&t);
    assert_null(t.recs);
}

static void
test_crlf_and_no_final_newline(void **state)
{
    rf_csv_table t;

    (void)state;
    parse_ok("a,b\r\nc,\"d\r\ne\"\r\nf,g", &t);
    assert_int_equal(t.n, 3);
    assert_string_equal(t.recs[0].cells[1], "b");
    assert_string_equal(t.recs[1].cells[1], "d\r\ne"); /* kept as is inside quotes */
    assert_string_equal(t.recs[2].cells[0], "f");
    assert_string_equal(t.recs[2].cells[1], "g");
    rf_csv_table_free(&t);
}

static void
test_bom_skipped(void **state)
{
    rf_csv_table t;

    (void)state;
    parse_ok("\xEF\xBB\xBFidea_title,script_content\nx,y\n", &t);
    assert_string_equal(t.recs[0].cells[0], "idea_title");
    rf_csv_table_free(&t);
}

static void
test_ragged_rows_padded(void **state)
{
    rf_rows rows;
    char err[128];
    const char *text = "idea_title,description,script_content\n"
                       "only title\n"
                       "t2,d2,s2,extra,more\n";

    (void)state;
    assert_int_equal(rf_csv_read_rows(text, strlen(text), &LIM, 10, &rows, err, sizeof(err)),
                     RF_OK);
    assert_int_equal(rows.n, 2);
    assert_int_equal(rows.rows[0].row_number, 2);
    assert_string_equal(rows.rows[0].fields[RF_F_IDEA_TITLE], "only title");
    assert_null(rows.rows[0].fields[RF_F_DESCRIPTION]);
    assert_null(rows.rows[0].fields[RF_F_SCRIPT_CONTENT]);
    assert_string_equal(rows.rows[1].fields[RF_F_SCRIPT_CONTENT], "s2");
    rf_rows_free(&rows);
}

static void
test_header_by_name_shuffled(void **state)
{
    rf_rows rows;
    char err[128];
    bool header = false;
    rf_csv_table t;
    const char *text = "Script Content,PRIORITY,unknown column,Idea Title,duration_seconds\n"
                       "the script,high,ignored,The title,60\n";

    (void)state;
    parse_ok(text, &t);
    assert_int_equal(rf_csv_to_rows(&t, &rows, &header), RF_OK);
    assert_true(header);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.rows[0].row_number, 2);
    assert_string_equal(rows.rows[0].fields[RF_F_IDEA_TITLE], "The title");
    assert_string_equal(rows.rows[0].fields[RF_F_SCRIPT_CONTENT], "the script");
    assert_string_equal(rows.rows[0].fields[RF_F_PRIORITY], "high");
    assert_string_equal(rows.rows[0].fields[RF_F_DURATION_SECONDS], "60");
    assert_null(rows.rows[0].fields[RF_F_DESCRIPTION]);
    rf_rows_free(&rows);
    rf_csv_table_free(&t);
    (void)err;
}

static void
test_no_header_uses_letters(void **state)
{
    rf_rows rows;
    char err[128];
    const char *text = "How to focus,Learn,pros,calm,120,youtube,Script text,male,modern,low\n"
                       "Second,,,,,,Another script\n";

    (void)state;
    assert_int_equal(rf_csv_read_rows(text, strlen(text), &LIM, 10, &rows, err, sizeof(err)),
                     RF_OK);
    assert_int_equal(rows.n, 2);
    assert_int_equal(rows.rows[0].row_number, 1);
    assert_string_equal(rows.rows[0].fields[RF_F_IDEA_TITLE], "How to focus");
    assert_string_equal(rows.rows[0].fields[RF_F_DESCRIPTION], "Learn");
    assert_string_equal(rows.rows[0].fields[RF_F_TARGET_AUDIENCE], "pros");
    assert_string_equal(rows.rows[0].fields[RF_F_TONE], "calm");
    assert_string_equal(rows.rows[0].fields[RF_F_DURATION_SECONDS], "120");
    assert_string_equal(rows.rows[0].fields[RF_F_PLATFORM_PREFERENCES], "youtube");
    assert_string_equal(rows.rows[0].fields[RF_F_SCRIPT_CONTENT], "Script text");
    assert_string_equal(rows.rows[0].fields[RF_F_VOICE_PREFERENCE], "male");
    assert_string_equal(rows.rows[0].fields[RF_F_STYLE_OVERRIDE], "modern");
    assert_string_equal(rows.rows[0].fields[RF_F_PRIORITY], "low");
    assert_int_equal(rows.rows[1].row_number, 2);
    assert_string_equal(rows.rows[1].fields[RF_F_SCRIPT_CONTENT], "Another script");
    rf_rows_free(&rows);
}

static void
test_unicode_preserved(void **state)
{
    rf_rows rows;
    char err[128];
    const char *text = "idea_title,script_content\n"
                       "\"مرحبا بالعالم\",\"東京の朝、\"\"静か\"\"な時間\"\n"
                       "Привет 🎉,ok\n";

    (void)state;
    assert_int_equal(rf_csv_read_rows(text, strlen(text), &LIM, 10, &rows, err, sizeof(err)),
                     RF_OK);
    assert_string_equal(rows.rows[0].fields[RF_F_IDEA_TITLE], "مرحبا بالعالم");
    assert_string_equal(rows.rows[0].fields[RF_F_SCRIPT_CONTENT], "東京の朝、\"静か\"な時間");
    assert_string_equal(rows.rows[1].fields[RF_F_IDEA_TITLE], "Привет 🎉");
    rf_rows_free(&rows);
}

static void
test_oversized_field_refused(void **state)
{
    char *text = malloc(4096);
    rf_csv_table t;
    char err[256] = "";

    (void)state;
    assert_non_null(text);
    memset(text, 'x', 2000);
    strcpy(text + 2000, ",y\n");
    assert_int_equal(rf_csv_parse(text, strlen(text), &LIM, &t, err, sizeof(err)), RF_ETOOBIG);
    assert_non_null(strstr(err, "longer than 1024"));
    assert_int_equal(t.n, 0);
    free(text);
}

static void
test_too_many_rows_refused(void **state)
{
    rf_rows rows;
    char err[256] = "";
    const char *text = "idea_title,script_content\na,b\nc,d\ne,f\n";

    (void)state;
    assert_int_equal(rf_csv_read_rows(text, strlen(text), &LIM, 2, &rows, err, sizeof(err)),
                     RF_ETOOBIG);
    assert_non_null(strstr(err, "3 data rows"));
    assert_int_equal(rows.n, 0);
}

static void
test_unterminated_quote(void **state)
{
    rf_csv_table t;
    char err[256] = "";
    const char *text = "a,b\nc,\"never closed\n";

    (void)state;
    assert_int_equal(rf_csv_parse(text, strlen(text), &LIM, &t, err, sizeof(err)), RF_EINVAL);
    assert_non_null(strstr(err, "record 2"));
    assert_non_null(strstr(err, "unterminated"));
}

static void
test_empty_lines_and_trailing_records(void **state)
{
    rf_rows rows;
    char err[128];
    const char *text = "idea_title,script_content\na,b\n\n,\nc,d\n,\n\n";

    (void)state;
    assert_int_equal(rf_csv_read_rows(text, strlen(text), &LIM, 10, &rows, err, sizeof(err)),
                     RF_OK);
    /* inner empty records stay (they become skipped items), trailing ones go */
    assert_int_equal(rows.n, 4);
    assert_int_equal(rows.rows[3].row_number, 5);
    assert_string_equal(rows.rows[3].fields[RF_F_IDEA_TITLE], "c");
    assert_string_equal(rows.rows[1].fields[RF_F_IDEA_TITLE], "");
    rf_rows_free(&rows);
}

static void
test_field_lookup_aliases(void **state)
{
    (void)state;
    assert_int_equal(rf_field_lookup("idea_title"), RF_F_IDEA_TITLE);
    assert_int_equal(rf_field_lookup("Idea/Title"), RF_F_IDEA_TITLE);
    assert_int_equal(rf_field_lookup("Duration (seconds)"), RF_F_DURATION_SECONDS);
    assert_int_equal(rf_field_lookup(" Platform Preference "), RF_F_PLATFORM_PREFERENCES);
    assert_int_equal(rf_field_lookup("STYLE"), RF_F_STYLE_OVERRIDE);
    assert_int_equal(rf_field_lookup("image_url"), -1);
    assert_int_equal(rf_field_lookup(""), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quotes_commas_newlines),
        cmocka_unit_test(test_crlf_and_no_final_newline),
        cmocka_unit_test(test_bom_skipped),
        cmocka_unit_test(test_ragged_rows_padded),
        cmocka_unit_test(test_header_by_name_shuffled),
        cmocka_unit_test(test_no_header_uses_letters),
        cmocka_unit_test(test_unicode_preserved),
        cmocka_unit_test(test_oversized_field_refused),
        cmocka_unit_test(test_too_many_rows_refused),
        cmocka_unit_test(test_unterminated_quote),
        cmocka_unit_test(test_empty_lines_and_trailing_records),
        cmocka_unit_test(test_field_lookup_aliases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
