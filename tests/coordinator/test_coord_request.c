/* Bulk-job request validation without HTTP: every bad field is refused with
 * validation details naming it; good requests are normalised. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "request.h"

static rf_coord_config cfg;

static int
setup(void **state)
{
    (void)state;
    rf_config_defaults(&cfg);
    return 0;
}

#define ROWS "{\"type\":\"rows\",\"rows\":[{\"idea_title\":\"t\",\"script_content\":\"s\"}]}"

static void
expect_refused(const char *body, const char *field, const char *needle)
{
    rf_job_spec spec;
    rf_verr e;
    rf_err rv;

    memset(&e, 0, sizeof(e));
    rv = rf_job_request_parse(body, strlen(body), &cfg, &spec, &e);
    if (rv == RF_OK) {
        rf_job_spec_clear(&spec);
        fail_msg("accepted: %s", body);
    }
    assert_true(rv == RF_EINVAL || rv == RF_ETOOBIG);
    if (strcmp(e.field, field) != 0) {
        fail_msg("field '%s' (%s), expected '%s' for %s", e.field, e.message, field, body);
    }
    if (needle != NULL && strstr(e.message, needle) == NULL) {
        fail_msg("message '%s' lacks '%s'", e.message, needle);
    }
    assert_true(e.reason[0] != '\0');
}

static void
test_valid_minimal_defaults(void **state)
{
    const char *body = "{\"title\":\"  Spring  \",\"input_source\":" ROWS
                       ",\"output\":{\"output_bucket\":\"my-videos\"},\"unknown\":[1,2]}";
    rf_job_spec spec;
    rf_verr e;

    (void)state;
    assert_int_equal(rf_job_request_parse(body, strlen(body), &cfg, &spec, &e), RF_OK);
    assert_string_equal(spec.title, "Spring");
    assert_int_equal(spec.priority, 1);
    assert_int_equal(spec.processing_deadline_ms, 0);
    assert_string_equal(spec.format, "mp4");
    assert_string_equal(spec.video_codec, "h264");
    assert_string_equal(spec.audio_codec, "aac");
    assert_string_equal(spec.resolution, "1080p");
    assert_string_equal(spec.output_bucket, "my-videos");
    assert_string_equal(spec.template_id, "tpl_standard");
    assert_string_equal(spec.overrides_json, "{}");
    assert_string_equal(spec.input_json, "{\"type\":\"rows\",\"row_count\":1}");
    assert_int_equal(spec.source.rows.n, 1);
    rf_job_spec_clear(&spec);
}

static void
test_valid_full_normalised(void **state)
{
    const char *body =
        "{\"title\":\"Spring Campaign Videos\",\"priority\":\"HIGH\","
        "\"processing_deadline_ms\":7200000,\"callback_url\":\"https://yourapp.com/webhooks/job\","
        "\"input_source\":{\"type\":\"csv\",\"path\":\"/tmp/sheet.csv\"},"
        "\"output\":{\"format\":\"WebM\",\"video_codec\":\"VP9\",\"audio_codec\":\"Opus\","
        "\"resolution\":\"4K\",\"output_bucket\":\"a.b_c-d\"},"
        "\"template\":{\"template_id\":\"tpl_abc123\",\"overrides\":{\"style\":\"Modern\","
        "\"voice\":\"FEMALE\",\"background_music\":\"x.mp3\"}}}";
    rf_job_spec spec;
    rf_verr e;

    (void)state;
    assert_int_equal(rf_job_request_parse(body, strlen(body), &cfg, &spec, &e), RF_OK);
    assert_int_equal(spec.priority, 2);
    assert_int_equal(spec.processing_deadline_ms, 7200000);
    assert_string_equal(spec.callback_url, "https://yourapp.com/webhooks/job");
    assert_string_equal(spec.format, "webm");
    assert_string_equal(spec.video_codec, "vp9");
    assert_string_equal(spec.audio_codec, "opus");
    assert_string_equal(spec.resolution, "4k");
    assert_string_equal(spec.template_id, "tpl_abc123");
    assert_string_equal(spec.overrides_json,
                        "{\"background_music\":\"x.mp3\",\"style\":\"modern\",\"voice\":"
                        "\"female\"}");
    assert_string_equal(spec.source.path, "/tmp/sheet.csv");
    assert_string_equal(spec.input_json, "{\"type\":\"csv\",\"path\":\"/tmp/sheet.csv\"}");
    assert_non_null(strstr(spec.request_json, "Spring Campaign Videos"));
    rf_job_spec_clear(&spec);
}

static void
test_malformed_json(void **state)
{
    (void)state;
    expect_refused("{\"title\": \"x\",", "body", "line 1, column");
    expect_refused("[1,2]", "body", "object");
    expect_refused("{\"title\":\"a\",\"title\":\"b\"}", "body", "duplicate");
}

static void
test_bad_fields_named(void **state)
{
    (void)state;
    expect_refused("{\"input_source\":" ROWS ",\"output\":{\"output_bucket\":\"b\"}}", "title",
                   "required");
    expect_refused("{\"title\":7,\"input_source\":" ROWS ",\"output\":{\"output_bucket\":\"b\"}}",
                   "title", NULL);
    expect_refused("{\"title\":\"   \",\"input_source\":" ROWS
                   ",\"output\":{\"output_bucket\":\"b\"}}",
                   "title", NULL);
    expect_refused("{\"title\":\"t\",\"priority\":\"urgent\",\"input_source\":" ROWS
                   ",\"output\":{\"output_bucket\":\"b\"}}",
                   "priority", "low, normal, high");
    expect_refused("{\"title\":\"t\",\"processing_deadline_ms\":1000,\"input_source\":" ROWS
                   ",\"output\":{\"output_bucket\":\"b\"}}",
                   "processing_deadline_ms", NULL);
    expect_refused("{\"title\":\"t\",\"processing_deadline_ms\":\"soon\",\"input_source\":" ROWS
                   ",\"output\":{\"output_bucket\":\"b\"}}",
                   "processing_deadline_ms", NULL);
    expect_refused("{\"title\":\"t\",\"callback_url\":\"ftp://x/y\",\"input_source\":" ROWS
                   ",\"output\":{\"output_bucket\":\"b\"}}",
                   "callback_url", NULL);
    expect_refused("{\"title\":\"t\",\"input_source\":" ROWS "}", "output", NULL);
    expect_refused("{\"title\":\"t\",\"input_source\":" ROWS ",\"output\":{}}",
                   "output.output_bucket", "required");
    expect_refused("{\"title\":\"t\",\"input_source\":" ROWS
                   ",\"output\":{\"output_bucket\":\"../etc\"}}",
                   "output.output_bucket", NULL);
    expect_refused("{\"title\":\"t\",\"input_source\":" ROWS
                   ",\"output\":{\"output_bucket\":\"a/b\"}}",
                   "output.output_bucket", NULL);
    expect_refused("{\"title\":\"t\",\"input_source\":" ROWS
                   ",\"output\":{\"output_bucket\":\"b\",\"resolution\":\"8k\"}}",
                   "output.resolution", "720p, 1080p, 4k");
    expect_refused("{\"title\":\"t\",\"input_source\":" ROWS
                   ",\"output\":{\"output_bucket\":\"b\",\"format\":\"avi\"}}",
                   "output.format", NULL);
    expect_refused("{\"title\":\"t\",\"input_source\":" ROWS
                   ",\"output\":{\"output_bucket\":\"b\",\"video_codec\":\"av1\"}}",
                   "output.video_codec", NULL);
    expect_refused("{\"title\":\"t\",\"input_source\":" ROWS
                   ",\"output\":{\"output_bucket\":\"b\",\"audio_codec\":\"mp3\"}}",
                   "output.audio_codec", NULL);
    expect_refused("{\"title\":\"t\",\"input_source\":" ROWS
                   ",\"output\":{\"output_bucket\":\"b\"},\"template\":{\"overrides\":"
                   "{\"style\":\"grunge\"}}}",
                   "template.overrides.style", NULL);
    expect_refused("{\"title\":\"t\",\"input_source\":" ROWS
                   ",\"output\":{\"output_bucket\":\"b\"},\"template\":{\"overrides\":"
                   "{\"voice\":\"robot\"}}}",
                   "template.overrides.voice", NULL);
    expect_refused("{\"title\":\"t\",\"input_source\":" ROWS
                   ",\"output\":{\"output_bucket\":\"b\"},\"template\":{\"overrides\":"
                   "{\"colors\":[\"red\"]}}}",
                   "template.overrides.colors", NULL);
}

static void
test_title_length(void **state)
{
    char body[4096];
    char title[1024];

    (void)state;
    /* 200 characters of 2-byte UTF-8 pass, 201 do not */
    title[0] = '\0';
    for (int i = 0; i < 200; i++) {
        strcat(title, "é");
    }
    snprintf(body, sizeof(body),
             "{\"title\":\"%s\",\"input_source\":" ROWS ",\"output\":{\"output_bucket\":\"b\"}}",
             title);
    {
        rf_job_spec spec;
        rf_verr e;
        assert_int_equal(rf_job_request_parse(body, strlen(body), &cfg, &spec, &e), RF_OK);
        rf_job_spec_clear(&spec);
    }
    strcat(title, "x");
    snprintf(body, sizeof(body),
             "{\"title\":\"%s\",\"input_source\":" ROWS ",\"output\":{\"output_bucket\":\"b\"}}",
             title);
    expect_refused(body, "title", "200");
}

static void
test_incompatible_container_codecs(void **state)
{
    (void)state;
    expect_refused("{\"title\":\"t\",\"input_source\":" ROWS
                   ",\"output\":{\"output_bucket\":\"b\",\"format\":\"webm\"}}",
                   "output.video_codec", "webm requires");
    expect_refused("{\"title\":\"t\",\"input_source\":" ROWS
                   ",\"output\":{\"output_bucket\":\"b\",\"format\":\"webm\",\"video_codec\":"
                   "\"vp9\"}}",
                   "output.audio_codec", "opus");
    expect_refused("{\"title\":\"t\",\"input_source\":" ROWS
                   ",\"output\":{\"output_bucket\":\"b\",\"format\":\"mov\",\"video_codec\":"
                   "\"vp9\"}}",
                   "output.video_codec", NULL);
}

static void
test_unknown_template(void **state)
{
    (void)state;
    expect_refused("{\"title\":\"t\",\"input_source\":" ROWS
                   ",\"output\":{\"output_bucket\":\"b\"},\"template\":{\"template_id\":"
                   "\"tpl_nope\"}}",
                   "template.template_id", "tpl_nope");
    expect_refused("{\"title\":\"t\",\"input_source\":" ROWS
                   ",\"output\":{\"output_bucket\":\"b\"},\"template\":\"tpl_standard\"}",
                   "template", NULL);
}

static void
test_input_source_errors(void **state)
{
    (void)state;
    expect_refused("{\"title\":\"t\",\"output\":{\"output_bucket\":\"b\"}}", "input_source",
                   "required");
    /* sheet sources: the id, range, tab and write-back are checked without I/O */
    expect_refused("{\"title\":\"t\",\"input_source\":{\"type\":\"sheet\"},"
                   "\"output\":{\"output_bucket\":\"b\"}}",
                   "input_source.sheet_id", "required");
    expect_refused("{\"title\":\"t\",\"input_source\":{\"type\":\"sheet\",\"sheet_id\":\"a b\"},"
                   "\"output\":{\"output_bucket\":\"b\"}}",
                   "input_source.sheet_id", NULL);
    expect_refused("{\"title\":\"t\",\"input_source\":{\"type\":\"sheet\",\"sheet_id\":\"1A\","
                   "\"range\":\"A1:?\"},\"output\":{\"output_bucket\":\"b\"}}",
                   "input_source.range", "A1 notation");
    expect_refused("{\"title\":\"t\",\"input_source\":{\"type\":\"sheet\",\"sheet_id\":\"1A\","
                   "\"gid\":\"x\"},\"output\":{\"output_bucket\":\"b\"}}",
                   "input_source.gid", NULL);
    expect_refused("{\"title\":\"t\",\"input_source\":{\"type\":\"sheet\",\"sheet_id\":\"1A\"},"
                   "\"validation_level\":\"lax\",\"output\":{\"output_bucket\":\"b\"}}",
                   "validation_level", "strict, moderate, permissive");
    /* no service account configured in these tests */
    expect_refused("{\"title\":\"t\",\"input_source\":{\"type\":\"sheet\",\"sheet_id\":\"1A\"},"
                   "\"writeback\":{\"columns\":{\"state\":\"K\"}},"
                   "\"output\":{\"output_bucket\":\"b\"}}",
                   "writeback", "service account");
    expect_refused("{\"title\":\"t\",\"input_source\":" ROWS
                   ",\"writeback\":{\"columns\":{\"state\":\"K\"}},"
                   "\"output\":{\"output_bucket\":\"b\"}}",
                   "writeback", "input_source of type sheet");
    expect_refused("{\"title\":\"t\",\"input_source\":{\"type\":\"ftp\"},"
                   "\"output\":{\"output_bucket\":\"b\"}}",
                   "input_source.type", NULL);
    expect_refused("{\"title\":\"t\",\"input_source\":{\"type\":\"csv\",\"path\":\"rel.csv\"},"
                   "\"output\":{\"output_bucket\":\"b\"}}",
                   "input_source.path", "absolute");
    expect_refused("{\"title\":\"t\",\"input_source\":{\"type\":\"csv\",\"url\":\"gopher://x\"},"
                   "\"output\":{\"output_bucket\":\"b\"}}",
                   "input_source.url", NULL);
    expect_refused("{\"title\":\"t\",\"input_source\":{\"type\":\"csv\"},"
                   "\"output\":{\"output_bucket\":\"b\"}}",
                   "input_source.path", NULL);
    expect_refused("{\"title\":\"t\",\"input_source\":{\"type\":\"rows\",\"rows\":[]},"
                   "\"output\":{\"output_bucket\":\"b\"}}",
                   "input_source.rows", NULL);
    expect_refused("{\"title\":\"t\",\"input_source\":{\"type\":\"rows\",\"rows\":[1]},"
                   "\"output\":{\"output_bucket\":\"b\"}}",
                   "input_source.rows[0]", NULL);
    expect_refused("{\"title\":\"t\",\"input_source\":{\"type\":\"rows\",\"rows\":[{},"
                   "{\"duration_seconds\":true}]},\"output\":{\"output_bucket\":\"b\"}}",
                   "input_source.rows[1].duration_seconds", NULL);
    expect_refused("{\"title\":\"t\",\"input_source\":{\"type\":\"rows\",\"rows\":["
                   "{\"idea_title\":5}]},\"output\":{\"output_bucket\":\"b\"}}",
                   "input_source.rows[0].idea_title", NULL);
}

static void
test_local_files_disabled(void **state)
{
    (void)state;
    cfg.csv_url_allow_file = false;
    expect_refused("{\"title\":\"t\",\"input_source\":{\"type\":\"csv\",\"path\":\"/x.csv\"},"
                   "\"output\":{\"output_bucket\":\"b\"}}",
                   "input_source.path", NULL);
    expect_refused("{\"title\":\"t\",\"input_source\":{\"type\":\"csv\",\"url\":"
                   "\"file:///x.csv\"},\"output\":{\"output_bucket\":\"b\"}}",
                   "input_source.url", NULL);
    cfg.csv_url_allow_file = true;
}

static void
test_row_limit(void **state)
{
    (void)state;
    cfg.max_rows_per_job = 2;
    expect_refused("{\"title\":\"t\",\"input_source\":{\"type\":\"rows\",\"rows\":[{},{},{}]},"
                   "\"output\":{\"output_bucket\":\"b\"}}",
                   "input_source.rows", "limit of 2");
    cfg.max_rows_per_job = 10000;
}

static void
test_priority_names(void **state)
{
    (void)state;
    assert_string_equal(rf_priority_name(0), "low");
    assert_string_equal(rf_priority_name(1), "normal");
    assert_string_equal(rf_priority_name(2), "high");
    assert_int_equal(rf_priority_parse("Normal"), 1);
    assert_int_equal(rf_priority_parse("urgent"), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_minimal_defaults),
        cmocka_unit_test(test_valid_full_normalised),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_bad_fields_named),
        cmocka_unit_test(test_title_length),
        cmocka_unit_test(test_incompatible_container_codecs),
        cmocka_unit_test(test_unknown_template),
        cmocka_unit_test(test_input_source_errors),
        cmocka_unit_test(test_local_files_disabled),
        cmocka_unit_test(test_row_limit),
        cmocka_unit_test(test_priority_names),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
