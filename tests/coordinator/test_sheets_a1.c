/* A1 notation: every form Google accepts, refusals, formatting back and the
 * row limit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "a1.h"

typedef struct a1_case {
    const char *text;
    const char *sheet;
    uint32_t col_start, col_end, row_start, row_end;
    const char *formatted;
} a1_case;

static const a1_case good[] = {
    {"A1:Z1000", "", 1, 26, 1, 1000, "A1:Z1000"},
    {"A2:J", "", 1, 10, 2, 0, "A2:J"},
    {"A:J", "", 1, 10, 1, 0, "A:J"},
    {"1:2", "", 1, 0, 1, 2, "1:2"},
    {"B7", "", 2, 2, 7, 7, "B7"},
    {"Sheet1!A1:J50", "Sheet1", 1, 10, 1, 50, "Sheet1!A1:J50"},
    {"Sheet1!A:A", "Sheet1", 1, 1, 1, 0, "Sheet1!A:A"},
    {"Sheet1!1:2", "Sheet1", 1, 0, 1, 2, "Sheet1!1:2"},
    {"Sheet1!A5:A", "Sheet1", 1, 1, 5, 0, "Sheet1!A5:A"},
    {"'My Sheet'!A:A", "My Sheet", 1, 1, 1, 0, "'My Sheet'!A:A"},
    {"'It''s mine'!B2:C3", "It's mine", 2, 3, 2, 3, "'It''s mine'!B2:C3"},
    {"'Data'!A1:B2", "Data", 1, 2, 1, 2, "Data!A1:B2"},
    {"Sheet1", "Sheet1", 1, 0, 1, 0, "Sheet1"},
    {"'My Sheet'", "My Sheet", 1, 0, 1, 0, "'My Sheet'"},
    {"Ideas 2024", "Ideas 2024", 1, 0, 1, 0, "'Ideas 2024'"},
    {"2024", "2024", 1, 0, 1, 0, "'2024'"},
    {"'A1'!A1:B2", "A1", 1, 2, 1, 2, "'A1'!A1:B2"},
    {"  a1:j100  ", "", 1, 10, 1, 100, "A1:J100"},
    {"$A$1:$J$50", "", 1, 10, 1, 50, "A1:J50"},
    {"J50:A1", "", 1, 10, 1, 50, "A1:J50"},
    {"AA10:ZZZ20", "", 27, 18278, 10, 20, "AA10:ZZZ20"},
    {"'Лист 1'!A1:J10", "Лист 1", 1, 10, 1, 10, "'Лист 1'!A1:J10"},
    {"'ورقة'!A:J", "ورقة", 1, 10, 1, 0, "'ورقة'!A:J"},
};

static void
test_forms(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        const a1_case *c = &good[i];
        rf_a1_range r;
        char err[256] = "", buf[RF_A1_TEXT_MAX];

        if (rf_a1_parse(c->text, &r, err, sizeof(err)) != RF_OK) {
            fail_msg("'%s' refused: %s", c->text, err);
        }
        if (strcmp(r.sheet, c->sheet) != 0 || r.col_start != c->col_start ||
            r.col_end != c->col_end || r.row_start != c->row_start || r.row_end != c->row_end) {
            fail_msg("'%s' -> sheet '%s' cols %u..%u rows %u..%u", c->text, r.sheet, r.col_start,
                     r.col_end, r.row_start, r.row_end);
        }
        assert_int_equal(rf_a1_format(&r, buf, sizeof(buf)), RF_OK);
        if (strcmp(buf, c->formatted) != 0) {
            fail_msg("'%s' formatted as '%s', want '%s'", c->text, buf, c->formatted);
        }
        /* the formatted text reads back the same */
        {
            rf_a1_range again;
            assert_int_equal(rf_a1_parse(buf, &again, NULL, 0), RF_OK);
            assert_memory_equal(&again, &r, sizeof(r));
        }
    }
}

static void
test_refused(void **state)
{
    static const char *const bad[] = {
        "",         "   ", "A1:",      ":B2",     "A0:B2",        "AAAA1:B2",
        "A1:B2:C3", "!A1", "'open!A1", "'x'y!A1", "Sheet1!",      "Sheet1!foo",
        "A:5",      "1:B", "It's!A1",  "''!A1",   "A1:B99999999", "x:y:z",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rf_a1_range r;
        char err[256] = "";
        if (rf_a1_parse(bad[i], &r, err, sizeof(err)) == RF_OK) {
            fail_msg("'%s' accepted (sheet '%s' cols %u..%u rows %u..%u)", bad[i], r.sheet,
                     r.col_start, r.col_end, r.row_start, r.row_end);
        }
        assert_true(strlen(err) > 0);
        assert_int_equal(r.col_start, 0); /* zeroed on failure */
    }
}

static void
test_columns(void **state)
{
    static const struct {
        uint32_t n;
        const char *s;
    } cols[] = {{1, "A"},   {10, "J"},   {26, "Z"},    {27, "AA"},
                {52, "AZ"}, {702, "ZZ"}, {703, "AAA"}, {18278, "ZZZ"}};
    char buf[4];

    (void)state;
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
        rf_a1_col_name(cols[i].n, buf);
        assert_string_equal(buf, cols[i].s);
        assert_int_equal(rf_a1_col_parse(cols[i].s), cols[i].n);
    }
    rf_a1_col_name(0, buf);
    assert_string_equal(buf, "");
    rf_a1_col_name(18279, buf);
    assert_string_equal(buf, "");
    assert_int_equal(rf_a1_col_parse("k"), 11);
    assert_int_equal(rf_a1_col_parse("$M"), 13);
    assert_int_equal(rf_a1_col_parse("K1"), 0);
    assert_int_equal(rf_a1_col_parse("AAAA"), 0);
    assert_int_equal(rf_a1_col_parse(""), 0);
    assert_int_equal(rf_a1_col_parse(NULL), 0);
}

static void
test_row_limit(void **state)
{
    rf_a1_range r;
    char err[256] = "";

    (void)state;
    /* header + 10,000 data rows fit; one more does not */
    assert_int_equal(rf_a1_parse("A1:J10001", &r, NULL, 0), RF_OK);
    assert_int_equal(rf_a1_row_count(&r), 10001);
    assert_int_equal(rf_a1_check_rows(&r, 10000, err, sizeof(err)), RF_OK);
    assert_int_equal(rf_a1_parse("A1:J10002", &r, NULL, 0), RF_OK);
    assert_int_equal(rf_a1_check_rows(&r, 10000, err, sizeof(err)), RF_ETOOBIG);
    assert_non_null(strstr(err, "10002 rows"));
    /* whole rows count too */
    assert_int_equal(rf_a1_parse("Sheet1!1:20000", &r, NULL, 0), RF_OK);
    assert_int_equal(rf_a1_check_rows(&r, 10000, err, sizeof(err)), RF_ETOOBIG);
    /* open-ended ranges are only known once read */
    assert_int_equal(rf_a1_parse("A2:J", &r, NULL, 0), RF_OK);
    assert_int_equal(rf_a1_row_count(&r), 0);
    assert_int_equal(rf_a1_check_rows(&r, 10, err, sizeof(err)), RF_OK);
}

static void
test_format_sheet_quoting(void **state)
{
    char buf[64];

    (void)state;
    buf[0] = '\0';
    assert_int_equal(rf_a1_format_sheet("Sheet1", buf, sizeof(buf)), RF_OK);
    assert_string_equal(buf, "Sheet1");
    buf[0] = '\0';
    assert_int_equal(rf_a1_format_sheet("Bob's ideas", buf, sizeof(buf)), RF_OK);
    assert_string_equal(buf, "'Bob''s ideas'");
    buf[0] = '\0';
    assert_int_equal(rf_a1_format_sheet("AB12", buf, sizeof(buf)), RF_OK);
    assert_string_equal(buf, "'AB12'"); /* reads as a cell otherwise */
    buf[0] = '\0';
    assert_int_equal(rf_a1_format_sheet("a very long sheet name", buf, 8), RF_ETOOBIG);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_columns),
        cmocka_unit_test(test_row_limit),
        cmocka_unit_test(test_format_sheet_quoting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
