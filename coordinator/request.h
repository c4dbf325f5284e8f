/* Decoding and validation of a bulk-job creation request (the JSON body of
 * POST /api/v1/bulk-jobs), with no HTTP involved so that it can be tested and
 * fuzzed on its own. Values that the user guide spells in several ways are
 * normalised: "MP4" -> "mp4", "H.264" -> "h264", "4K" -> "4k".
 *
 * Unknown top-level fields are ignored. Every failure is RF_EINVAL (or
 * RF_ETOOBIG for a size limit) with *err naming the field; RF_ENOMEM on
 * allocation failure. */
#ifndef RF_REQUEST_H
#define RF_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "rf_err.h"
#include "rf_proto.h"
#include "sources.h"
#include "validate.h"
#include "writeback.h"
#include "verr.h"

#define RF_JOB_TITLE_MAX_CHARS 200

typedef struct rf_job_spec {
    char title[RF_TITLE_MAX + 1];    /* trimmed, <= 200 characters */
    int priority;                    /* 0 low, 1 normal, 2 high */
    int64_t processing_deadline_ms;  /* 0: none, else 60000..86400000 */
    char callback_url[RF_PATH_MAX];  /* "" or an http(s) URL */
    char format[RF_NAME_MAX];        /* mp4, mov, webm */
    char video_codec[RF_NAME_MAX];   /* h264, h265, vp9 */
    char audio_codec[RF_NAME_MAX];   /* aac, opus */
    char resolution[RF_NAME_MAX];    /* 720p, 1080p, 4k */
    char output_bucket[RF_NAME_MAX]; /* [A-Za-z0-9._-]{1,63}, no ".." */
    char template_id[RF_NAME_MAX];
    char *overrides_json; /* heap: compact JSON object */
    char *request_json;   /* heap: the body as received */
    char *input_json;     /* heap: rf_source_summary as compact JSON */
    char *template_json;  /* heap: a custom template's resolved settings, or NULL */
    rf_source source;
    rf_vlevel validation_level; /* "validation_level": strict, moderate (default), permissive */
    bool writeback;             /* "writeback": results go back into the sheet */
    rf_wb_columns wb_columns;   /* "writeback.columns" */
} rf_job_spec;

/* Resolves a template_id that is not a built-in (a tenant's custom template):
 * RF_OK with *resolved (malloc'd JSON of rf_template fields, see
 * custom_templates.h), RF_ENOTFOUND when there is no such template, another
 * error when the lookup itself failed. */
typedef rf_err (*rf_template_lookup_fn)(void *ctx, const char *template_id, char **resolved);

/* Parses and validates body[0..len) into *out (zeroed first; release it with
 * rf_job_spec_clear on success and failure alike). Malformed JSON is reported
 * with jansson's line and column. Only built-in templates are known. */
rf_err rf_job_request_parse(const char *body, size_t len, const rf_coord_config *cfg,
                            rf_job_spec *out, rf_verr *err);

/* The same, asking lookup (may be NULL) about template ids that are not
 * built-ins. An unknown one is RF_EINVAL naming template.template_id; a
 * failing lookup is returned as is. */
rf_err rf_job_request_parse_ex(const char *body, size_t len, const rf_coord_config *cfg,
                               rf_template_lookup_fn lookup, void *lookup_ctx, rf_job_spec *out,
                               rf_verr *err);

/* Frees heap fields and zeroes *spec. NULL-safe, idempotent. */
void rf_job_spec_clear(rf_job_spec *spec);

/* "low" / "normal" / "high" for 0 / 1 / 2 (anything else: "normal"), and the
 * reverse, case-insensitive (-1 if unknown). */
const char *rf_priority_name(int priority);
int rf_priority_parse(const char *s);

#endif
