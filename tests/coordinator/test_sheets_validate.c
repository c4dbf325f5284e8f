/* Row validation at the strict, moderate and permissive levels, all on the
 * same messy sheet (sheets_testrows.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sheets_testrows.h"
#include "validate.h"

typedef struct fixture {
    rf_rows rows;
} fixture;

static int
setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    if (fx == NULL || messy_build(&fx->rows) != 0) {
        return -1;
    }
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture *fx = *state;
    rf_rows_free(&fx->rows);
    free(fx);
    return 0;
}

static const rf_row *
row_at(fixture *fx, uint32_t row_number)
{
    for (size_t i = 0; i < fx->rows.n; i++) {
        if (fx->rows.rows[i].row_number == row_number) {
            return &fx->rows.rows[i];
        }
    }
    fail_msg("no row %u", row_number);
    return NULL;
}

static void
check(fixture *fx, uint32_t rn, rf_vlevel level, rf_row_check *c)
{
    assert_int_equal(rf_validate_row(row_at(fx, rn), level, c), RF_OK);
    assert_int_equal(c->row_number, rn);
    assert_non_null(c->data);
}

static const char *
data_str(const rf_row_check *c, const char *key)
{
    return json_string_value(json_object_get(c->data, key));
}

/* Which rows each level accepts (A), refuses (R) or skips (S), rows 2..16. */
static void
test_outcomes_per_level(void **state)
{
    static const struct {
        rf_vlevel level;
        const char *outcome; /* one letter per row 2..16 */
    } want[] = {
        /*                          2345678901234567 */
        {RF_VLEVEL_STRICT, /*    */ "ARSSRRRRRRRRRRR"},
        {RF_VLEVEL_MODERATE, /*  */ "AASSRRRARRRRARA"},
        {RF_VLEVEL_PERMISSIVE, /**/ "AASSAAAAAARAAAA"},
    };
    fixture *fx = *state;

    for (size_t l = 0; l < sizeof(want) / sizeof(want[0]); l++) {
        for (size_t i = 0; i < fx->rows.n; i++) {
            rf_row_check c;
            char got;
            check(fx, fx->rows.rows[i].row_number, want[l].level, &c);
            got = c.skipped ? 'S' : c.error[0] != '\0' ? 'R' : 'A';
            if (got != want[l].outcome[i]) {
                fail_msg("%s row %u: got %c want %c (error '%s')", rf_vlevel_name(want[l].level),
                         c.row_number, got, want[l].outcome[i], c.error);
            }
            if (got == 'R') {
                /* every refusal names the sheet row and a field */
                char prefix[32];
                snprintf(prefix, sizeof(prefix), "row %u: ", c.row_number);
                assert_true(strncmp(c.error, prefix, strlen(prefix)) == 0);
                assert_true(strlen(c.error_field) > 0);
                assert_non_null(strstr(c.error, c.error_field));
            }
            if (got == 'A') {
                assert_true(c.n_platforms >= 1);
                assert_true(strlen(c.title) > 0);
            }
            rf_row_check_clear(&c);
        }
    }
}

static void
test_moderate_messages(void **state)
{
    fixture *fx = *state;
    rf_row_check c;

    check(fx, 6, RF_VLEVEL_MODERATE, &c);
    assert_string_equal(c.error, "row 6: script_content is required");
    assert_string_equal(c.error_field, "script_content");
    rf_row_check_clear(&c);

    check(fx, 7, RF_VLEVEL_MODERATE, &c);
    assert_string_equal(c.error,
                        "row 7: duration_seconds must be a whole number of seconds (got 'abc')");
    rf_row_check_clear(&c);

    check(fx, 8, RF_VLEVEL_MODERATE, &c);
    assert_string_equal(c.error, "row 8: duration_seconds must be between 1 and 3600");
    rf_row_check_clear(&c);

    check(fx, 10, RF_VLEVEL_MODERATE, &c);
    assert_non_null(strstr(c.error, "unknown platform 'myspace'"));
    assert_string_equal(c.error_field, "platform_preferences");
    rf_row_check_clear(&c);

    check(fx, 11, RF_VLEVEL_MODERATE, &c);
    assert_string_equal(c.error_field, "voice_preference");
    assert_non_null(strstr(c.error, "voice_preference must be one of female, male, neutral "
                                    "(got 'Robot')"));
    assert_non_null(strstr(c.error, "; style_override must be one of"));
    assert_non_null(strstr(c.error, "; priority must be one of low, normal, high (got 'urgent')"));
    rf_row_check_clear(&c);

    check(fx, 12, RF_VLEVEL_MODERATE, &c);
    assert_string_equal(c.error, "row 12: idea_title is required; script_content is required");
    assert_string_equal(c.error_field, "idea_title");
    rf_row_check_clear(&c);

    check(fx, 15, RF_VLEVEL_MODERATE, &c);
    assert_string_equal(c.error, "row 15: description is not valid UTF-8 text");
    assert_string_equal(c.error_field, "description");
    rf_row_check_clear(&c);
}

static void
test_moderate_normalises(void **state)
{
    fixture *fx = *state;
    rf_row_check c;

    check(fx, 2, RF_VLEVEL_MODERATE, &c);
    assert_int_equal(c.n_platforms, 2);
    assert_string_equal(c.platforms[0], "youtube");
    assert_string_equal(c.platforms[1], "tiktok");
    assert_int_equal(json_integer_value(json_object_get(c.data, "duration_seconds")), 300);
    assert_int_equal(c.duration_s, 300);
    assert_int_equal(c.priority, 1);
    assert_string_equal(data_str(&c, "platform_preferences"), "youtube,tiktok");
    rf_row_check_clear(&c);

    /* RTL text and emoji pass through byte for byte */
    check(fx, 3, RF_VLEVEL_MODERATE, &c);
    assert_string_equal(c.title, "كيف تحسن إنتاجيتك 🚀");
    assert_string_equal(data_str(&c, "script_content"), "نص كامل للفيديو");
    assert_int_equal(c.duration_s, 120);
    assert_int_equal(c.n_platforms, 1);
    assert_string_equal(c.platforms[0], "youtube"); /* the default */
    rf_row_check_clear(&c);

    check(fx, 14, RF_VLEVEL_MODERATE, &c);
    assert_string_equal(c.title, "日本語のタイトル");
    assert_int_equal(c.n_platforms, 1);
    assert_string_equal(c.platforms[0], "instagram_reels");
    assert_string_equal(data_str(&c, "voice_preference"), "male");
    rf_row_check_clear(&c);

    check(fx, 16, RF_VLEVEL_MODERATE, &c);
    assert_string_equal(c.title, "Padded title");
    assert_int_equal(c.duration_s, 60);
    assert_int_equal(c.n_platforms, 3);
    assert_string_equal(c.platforms[1], "shorts");
    assert_string_equal(data_str(&c, "voice_preference"), "neutral");
    assert_string_equal(data_str(&c, "style_override"), "classic");
    assert_string_equal(data_str(&c, "priority"), "high");
    assert_int_equal(c.priority, 2);
    rf_row_check_clear(&c);

    /* skipped rows carry an empty object */
    check(fx, 5, RF_VLEVEL_MODERATE, &c);
    assert_true(c.skipped);
    assert_int_equal(json_object_size(c.data), 0);
    rf_row_check_clear(&c);
}

static void
test_strict(void **state)
{
    fixture *fx = *state;
    rf_row_check c;

    /* moderate accepts 300.0; strict wants digits */
    check(fx, 9, RF_VLEVEL_STRICT, &c);
    assert_non_null(strstr(c.error, "duration_seconds must be a whole number of seconds (got "
                                    "'300.0')"));
    rf_row_check_clear(&c);
    /* every column is required */
    check(fx, 14, RF_VLEVEL_STRICT, &c);
    assert_string_equal(c.error_field, "description");
    assert_non_null(strstr(c.error, "description is required (strict validation)"));
    assert_non_null(strstr(c.error, "priority is required"));
    rf_row_check_clear(&c);
    check(fx, 2, RF_VLEVEL_STRICT, &c);
    assert_string_equal(c.error, "");
    assert_int_equal(c.duration_s, 300);
    rf_row_check_clear(&c);
}

static void
test_permissive_repairs(void **state)
{
    fixture *fx = *state;
    rf_row_check c;

    check(fx, 6, RF_VLEVEL_PERMISSIVE, &c); /* script from the description */
    assert_string_equal(c.error, "");
    assert_string_equal(data_str(&c, "script_content"), "a description");
    assert_non_null(strstr(c.warning, "row 6: script_content missing; narrating the description"));
    rf_row_check_clear(&c);

    check(fx, 7, RF_VLEVEL_PERMISSIVE, &c);
    assert_int_equal(c.duration_s, 300);
    assert_null(json_object_get(c.data, "duration_seconds"));
    assert_non_null(strstr(c.warning, "duration_seconds 'abc' is not a number; using 300"));
    rf_row_check_clear(&c);

    check(fx, 8, RF_VLEVEL_PERMISSIVE, &c);
    assert_int_equal(c.duration_s, 3600);
    assert_int_equal(json_integer_value(json_object_get(c.data, "duration_seconds")), 3600);
    rf_row_check_clear(&c);

    check(fx, 10, RF_VLEVEL_PERMISSIVE, &c);
    assert_int_equal(c.n_platforms, 1);
    assert_string_equal(c.platforms[0], "youtube");
    assert_string_equal(data_str(&c, "platform_preferences"), "youtube");
    assert_non_null(strstr(c.warning, "unknown platform 'myspace' ignored"));
    rf_row_check_clear(&c);

    check(fx, 11, RF_VLEVEL_PERMISSIVE, &c);
    assert_null(json_object_get(c.data, "voice_preference"));
    assert_null(json_object_get(c.data, "style_override"));
    assert_null(json_object_get(c.data, "priority"));
    assert_int_equal(c.priority, 1);
    rf_row_check_clear(&c);

    check(fx, 12, RF_VLEVEL_PERMISSIVE, &c);
    assert_string_equal(c.error,
                        "row 12: idea_title and script_content are both empty: nothing to render");
    rf_row_check_clear(&c);

    check(fx, 13, RF_VLEVEL_PERMISSIVE, &c); /* title from the script's first words */
    assert_string_equal(c.error, "");
    assert_true(strncmp(c.title, "This is a script without a title", 32) == 0);
    assert_true(strlen(c.title) <= 80);
    assert_true(c.title[strlen(c.title) - 1] != ' ');
    assert_null(strchr(c.title, '\n'));
    rf_row_check_clear(&c);

    check(fx, 15, RF_VLEVEL_PERMISSIVE, &c);
    assert_string_equal(c.error, "");
    assert_null(json_object_get(c.data, "description"));
    assert_non_null(strstr(c.warning, "description is not valid UTF-8 text; ignored"));
    rf_row_check_clear(&c);
}

static void
test_permissive_cuts_at_character(void **state)
{
    /* "x" and 999 2-byte characters: byte 1024 is inside a character, so the
     * cut to 1024 bytes must stop at 1023 */
    char title[2000];
    rf_row row;
    rf_row_check c;

    (void)state;
    title[0] = 'x';
    for (size_t i = 0; i < 999; i++) {
        title[1 + 2 * i] = (char)0xD7; /* U+05D0 HEBREW LETTER ALEF */
        title[2 + 2 * i] = (char)0x90;
    }
    title[1999] = '\0';
    memset(&row, 0, sizeof(row));
    row.row_number = 9;
    row.fields[RF_F_IDEA_TITLE] = title;
    row.fields[RF_F_SCRIPT_CONTENT] = "s";
    assert_int_equal(rf_validate_row(&row, RF_VLEVEL_PERMISSIVE, &c), RF_OK);
    assert_string_equal(c.error, "");
    assert_int_equal(strlen(c.title), 1023);
    rf_row_check_clear(&c);
    assert_int_equal(rf_validate_row(&row, RF_VLEVEL_MODERATE, &c), RF_OK);
    assert_string_equal(c.error, "row 9: idea_title is longer than 1024 bytes");
    rf_row_check_clear(&c);
}

static void
test_table_report(void **state)
{
    fixture *fx = *state;
    rf_validation v;

    assert_int_equal(rf_validate_rows(&fx->rows, RF_VLEVEL_MODERATE, 3, &v), RF_OK);
    assert_int_equal(v.accepted, 5);
    assert_int_equal(v.refused, 8);
    assert_int_equal(v.skipped, 2);
    /* 3 kept plus "... and 5 more" */
    assert_int_equal(json_array_size(v.errors), 4);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(v.errors, 0), "row")), 6);
    assert_string_equal(json_string_value(json_object_get(json_array_get(v.errors, 0), "field")),
                        "script_content");
    assert_string_equal(json_string_value(json_object_get(json_array_get(v.errors, 3), "message")),
                        "... and 5 more refused rows");
    rf_validation_clear(&v);

    assert_int_equal(rf_validate_rows(&fx->rows, RF_VLEVEL_PERMISSIVE, 50, &v), RF_OK);
    assert_int_equal(v.accepted, 12);
    assert_int_equal(v.refused, 1);
    assert_int_equal(v.skipped, 2);
    assert_true(v.repaired >= 6);
    assert_int_equal(json_array_size(v.warnings), v.repaired);
    rf_validation_clear(&v);
}

/* Found by fuzz_sheets: a message quoting a cell cut inside a character
 * (or a cell that is not text) must still make a JSON report. */
static void
test_messages_cut_inside_a_character(void **state)
{
    char duration[64];
    rf_rows rows = {0};
    rf_row *row;
    rf_validation v;
    const char *msg;

    (void)state;
    duration[0] = 'x';
    for (size_t i = 0; i < 20; i++) {
        duration[1 + 2 * i] = (char)0xC3; /* é */
        duration[2 + 2 * i] = (char)0xA9;
    }
    duration[41] = '\0';
    assert_int_equal(rf_rows_add(&rows, 4, &row), RF_OK);
    assert_int_equal(rf_row_set(row, RF_F_IDEA_TITLE, "t", 1), RF_OK);
    assert_int_equal(rf_row_set(row, RF_F_SCRIPT_CONTENT, "s", 1), RF_OK);
    assert_int_equal(rf_row_set(row, RF_F_DURATION_SECONDS, duration, 41), RF_OK);
    assert_int_equal(rf_rows_add(&rows, 5, &row), RF_OK);
    assert_int_equal(rf_row_set(row, RF_F_IDEA_TITLE, "t", 1), RF_OK);
    assert_int_equal(rf_row_set(row, RF_F_SCRIPT_CONTENT, "s", 1), RF_OK);
    assert_int_equal(rf_row_set(row, RF_F_VOICE_PREFERENCE, "\xff\xfe", 2), RF_OK);
    assert_int_equal(rf_validate_rows(&rows, RF_VLEVEL_MODERATE, 10, &v), RF_OK);
    assert_int_equal(v.refused, 2);
    msg = json_string_value(json_object_get(json_array_get(v.errors, 0), "message"));
    assert_non_null(msg);
    /* 'x' and 15 whole characters fit in 32 bytes; the cut half shows as U+FFFD */
    assert_non_null(strstr(msg, "(got 'x\xC3\xA9"));
    assert_non_null(strstr(msg, "\xEF\xBF\xBD')"));
    rf_validation_clear(&v);
    assert_int_equal(rf_validate_rows(&rows, RF_VLEVEL_PERMISSIVE, 10, &v), RF_OK);
    assert_int_equal(v.accepted, 2);
    assert_int_equal(json_array_size(v.warnings), 2);
    rf_validation_clear(&v);
    rf_rows_free(&rows);
}

static void
test_json_string_lossy(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"plain", "plain"},
        {"\xD7\x90\xF0\x9F\x9A\x80", "\xD7\x90\xF0\x9F\x9A\x80"}, /* alef, rocket */
        {"a\xFF"
         "b",
         "a\xEF\xBF\xBD"
         "b"},
        {"\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"},                 /* overlong '/' */
        {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* surrogate */
        {"end\xE2\x82", "end\xEF\xBF\xBD\xEF\xBF\xBD"},           /* cut */
        {"", ""},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *j = rf_json_string_lossy(cases[i].in);
        assert_non_null(j);
        assert_string_equal(json_string_value(j), cases[i].out);
        json_decref(j);
    }
}

static void
test_levels_parse(void **state)
{
    rf_vlevel l = RF_VLEVEL_STRICT;

    (void)state;
    assert_true(rf_vlevel_parse(NULL, &l));
    assert_int_equal(l, RF_VLEVEL_MODERATE);
    assert_true(rf_vlevel_parse("STRICT", &l));
    assert_int_equal(l, RF_VLEVEL_STRICT);
    assert_true(rf_vlevel_parse("permissive", &l));
    assert_int_equal(l, RF_VLEVEL_PERMISSIVE);
    assert_false(rf_vlevel_parse("lenient", &l));
    assert_int_equal(l, RF_VLEVEL_PERMISSIVE);
    assert_string_equal(rf_vlevel_name(RF_VLEVEL_MODERATE), "moderate");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_outcomes_per_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_moderate_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_moderate_normalises, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permissive_repairs, setup, teardown),
        cmocka_unit_test(test_permissive_cuts_at_character),
        cmocka_unit_test_setup_teardown(test_table_report, setup, teardown),
        cmocka_unit_test(test_messages_cut_inside_a_character),
        cmocka_unit_test(test_json_string_lossy),
        cmocka_unit_test(test_levels_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
