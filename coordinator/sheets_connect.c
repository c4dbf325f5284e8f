/* POST /sheets/connect: the sample, the column mapping and the validation
 * report of one read of a sheet range. */
#include "sheets_connect.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rf_util.h"

/* The order of preview cells: what the seeds' clients index, then the rest
 * of the guide's fields. "image_url" is no field of ours (always ""). */
static const char *const preview_fields[] = {
    "idea_title",       "script_content", "image_url",        "description",
    "target_audience",  "tone",           "duration_seconds", "platform_preferences",
    "voice_preference", "style_override", "priority",
};
#define N_PREVIEW_FIELDS (sizeof(preview_fields) / sizeof(preview_fields[0]))

rf_err
rf_sheets_connect_parse(const json_t *body, rf_sheets_connect_req *out, rf_verr *err)
{
    json_t *v;
    rf_gerror ge;
    char why[256] = "";

    memset(out, 0, sizeof(*out));
    out->level = RF_VLEVEL_MODERATE;
    if (!json_is_object(body)) {
        rf_verr_set(err, "", "invalid_type", "the request body must be a JSON object");
        return RF_EINVAL;
    }
    v = json_object_get(body, "sheet_id");
    if (!json_is_string(v) || json_string_length(v) == 0) {
        rf_verr_set(err, "sheet_id", v == NULL ? "required" : "invalid_type",
                    "sheet_id is required: the id in the sheet's URL (docs.google.com/"
                    "spreadsheets/d/<sheet_id>/edit)");
        return RF_EINVAL;
    }
    if (rf_sheets_parse_id(json_string_value(v), out->sheet_id, out->gid, &ge) != RF_OK) {
        rf_verr_set(err, "sheet_id", "invalid_value", "%s", ge.message);
        return RF_EINVAL;
    }
    v = json_object_get(body, "range");
    if (v != NULL && !json_is_null(v)) {
        rf_a1_range r;
        if (!json_is_string(v)) {
            rf_verr_set(err, "range", "invalid_type", "range must be a string in A1 notation");
            return RF_EINVAL;
        }
        if (rf_a1_parse(json_string_value(v), &r, why, sizeof(why)) != RF_OK) {
            rf_verr_set(err, "range", "invalid_value", "range: %s", why);
            return RF_EINVAL;
        }
        if (rf_strlcpy(out->range, json_string_value(v), sizeof(out->range)) != RF_OK) {
            rf_verr_set(err, "range", "too_long", "range is longer than %d bytes",
                        RF_A1_TEXT_MAX - 1);
            return RF_EINVAL;
        }
    }
    v = json_object_get(body, "share_permissions");
    if (v != NULL && !json_is_null(v)) {
        const char *s = json_string_value(v);
        if (s == NULL || (strcmp(s, "read") != 0 && strcmp(s, "write") != 0)) {
            rf_verr_set(err, "share_permissions", "invalid_value",
                        "share_permissions must be read or write");
            return RF_EINVAL;
        }
        out->want_write = strcmp(s, "write") == 0;
    }
    v = json_object_get(body, "validation_level");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_string(v) || !rf_vlevel_parse(json_string_value(v), &out->level)) {
            rf_verr_set(err, "validation_level", "invalid_value",
                        "validation_level must be strict, moderate or permissive");
            return RF_EINVAL;
        }
    }
    v = json_object_get(body, "gid");
    if (v != NULL && !json_is_null(v)) {
        if (json_is_integer(v) && json_integer_value(v) >= 0) {
            snprintf(out->gid, sizeof(out->gid), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        } else if (json_is_string(v) && json_string_length(v) > 0 &&
                   json_string_length(v) < sizeof(out->gid) &&
                   strspn(json_string_value(v), "0123456789") == json_string_length(v)) {
            snprintf(out->gid, sizeof(out->gid), "%s", json_string_value(v));
        } else {
            rf_verr_set(err, "gid", "invalid_value",
                        "gid must be the digits after 'gid=' in the sheet's URL");
            return RF_EINVAL;
        }
    }
    return RF_OK;
}

static bool
row_blank(const rf_row *row)
{
    for (int f = 0; f < RF_F_COUNT; f++) {
        for (const char *p = row->fields[f]; p != NULL && *p != '\0'; p++) {
            if (!isspace((unsigned char)*p)) {
                return false;
            }
        }
    }
    return true;
}

static int
append_str(json_t *arr, const char *s)
{
    return json_array_append_new(arr, rf_json_string_lossy(s));
}

/* Adds a sheet-level error {row, field, message}; row 0 is written as null. */
static int
add_error(json_t *errors, uint32_t row, const char *field, const char *message)
{
    json_t *e = json_pack("{s:o, s:s, s:o}", "row", row > 0 ? json_integer(row) : json_null(),
                          "field", field, "message", rf_json_string_lossy(message));
    return json_array_insert_new(errors, 0, e) == 0 ? 0 : -1;
}

/* The preview array of one row, in preview_fields order. */
static json_t *
preview_row(const rf_row *row)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr != NULL && i < N_PREVIEW_FIELDS; i++) {
        int f = rf_field_lookup(preview_fields[i]);
        const char *s = f >= 0 && row->fields[f] != NULL ? row->fields[f] : "";
        /* image_url is no field: rf_field_lookup gives -1 and the cell is "".
         * Text that is not UTF-8 shows U+FFFD (validation refuses it). */
        if (json_array_append_new(arr, rf_json_string_lossy(s)) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

rf_err
rf_sheets_connect_report(const rf_sheet_values *v, const char *sheet_id, const char *range,
                         rf_vlevel level, int64_t max_rows, const char *service_account_email,
                         json_t **out)
{
    rf_rows rows = {0};
    rf_validation val = {0};
    bool header = false;
    int map[RF_F_COUNT]; /* field -> 0-based column in the range, -1 absent */
    size_t width = 0, shown = 0;
    json_t *root = NULL, *sample, *columns, *mapping, *preview, *preview_rows, *pfields;
    json_t *header_cells = NULL, *warnings, *validation;
    char msg[512];
    int bad = 0;
    rf_err rv;

    *out = NULL;
    rv = rf_sheet_values_to_rows(v, &rows, &header);
    if (rv != RF_OK) {
        goto out;
    }
    rv = rf_validate_rows(&rows, level, RF_CONNECT_MAX_MESSAGES, &val);
    if (rv != RF_OK) {
        goto out;
    }
    for (size_t r = 0; r < v->table.n; r++) {
        if (v->table.recs[r].n > width) {
            width = v->table.recs[r].n;
        }
    }
    root = json_object();
    sample = json_object();
    columns = json_array();
    mapping = json_object();
    preview = json_array();
    preview_rows = json_array();
    pfields = json_array();
    warnings = json_array();
    validation = json_object();
    bad |= json_object_set_new(root, "sample", sample);
    bad |= json_object_set_new(sample, "columns", columns);
    bad |= json_object_set_new(sample, "column_mapping", mapping);
    bad |= json_object_set_new(sample, "preview_fields", pfields);
    bad |= json_object_set_new(sample, "preview", preview);
    bad |= json_object_set_new(sample, "preview_rows", preview_rows);
    bad |= json_object_set_new(root, "validation", validation);
    bad |= json_object_set_new(validation, "warnings", warnings);
    if (bad != 0 || root == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }

    for (size_t c = 0; c < width; c++) {
        char letters[4];
        rf_a1_col_name(v->col_start + (uint32_t)c, letters);
        bad |= append_str(columns, letters);
    }
    for (int f = 0; f < RF_F_COUNT; f++) {
        map[f] = -1;
    }
    if (header) {
        /* rf_csv_to_rows maps by name with "first column wins"; the same rule
         * here, to show the mapping it used. */
        const rf_csv_record *h = &v->table.recs[0];
        header_cells = json_array();
        for (size_t c = 0; header_cells != NULL && c < h->n; c++) {
            int f = rf_field_lookup(h->cells[c]);
            bad |= json_array_append_new(header_cells, rf_json_string_lossy(h->cells[c]));
            if (f >= 0 && map[f] < 0) {
                map[f] = (int)c;
            } else if (f < 0 && h->cells[c][0] != '\0') {
                char letters[4];
                rf_a1_col_name(v->col_start + (uint32_t)c, letters);
                snprintf(msg, sizeof(msg),
                         "column %s ('%.60s') is not a known field and is ignored", letters,
                         h->cells[c]);
                bad |= append_str(warnings, msg);
            }
        }
    } else {
        for (int f = 0; f < RF_F_COUNT; f++) {
            uint32_t col = (uint32_t)f + 1; /* the guide's letters: A = idea_title */
            if (col >= v->col_start && col < v->col_start + width) {
                map[f] = (int)(col - v->col_start);
            }
        }
    }
    for (int f = 0; f < RF_F_COUNT; f++) {
        char letters[4];
        if (map[f] < 0) {
            continue;
        }
        rf_a1_col_name(v->col_start + (uint32_t)map[f], letters);
        bad |= json_object_set_new(mapping, rf_field_name((rf_field)f), json_string(letters));
    }
    bad |= json_object_set_new(sample, "header_detected", json_boolean(header));
    bad |= json_object_set_new(sample, "header", header_cells != NULL ? header_cells : json_null());
    for (size_t i = 0; i < N_PREVIEW_FIELDS; i++) {
        bad |= append_str(pfields, preview_fields[i]);
    }
    for (size_t i = 0; i < rows.n && shown < RF_CONNECT_PREVIEW_ROWS; i++) {
        if (row_blank(&rows.rows[i])) {
            continue;
        }
        bad |= json_array_append_new(preview, preview_row(&rows.rows[i]));
        bad |= json_array_append_new(preview_rows, json_integer(rows.rows[i].row_number));
        shown++;
    }
    bad |= json_object_set_new(sample, "row_count", json_integer((json_int_t)rows.n));
    bad |= json_object_set_new(sample, "empty_rows", json_integer((json_int_t)val.skipped));

    /* Sheet-level warnings first (the seeds' wording), then per-row ones. */
    if (val.skipped > 0) {
        snprintf(msg, sizeof(msg), "%zu empty row%s will be skipped", val.skipped,
                 val.skipped == 1 ? "" : "s");
        bad |= json_array_insert_new(warnings, 0, rf_json_string_lossy(msg));
    }
    if (rows.n > RF_CONNECT_LARGE_BATCH) {
        bad |= append_str(warnings, "Large batch size may take extended processing time");
    }
    if (!header && rows.n > 0) {
        bad |= append_str(warnings, "no header row found: columns are read by position "
                                    "(A = idea_title, B = description, ... G = script_content, "
                                    "J = priority)");
    }
    {
        json_t *row_warnings = val.warnings;
        size_t i;
        json_t *w;
        json_array_foreach(row_warnings, i, w)
        {
            bad |= json_array_append(warnings, w);
        }
    }
    /* Sheet-level errors go before the per-row ones. */
    for (int f = RF_F_COUNT - 1; f >= 0 && rows.n > 0; f--) {
        bool required =
            level == RF_VLEVEL_STRICT ||
            (level == RF_VLEVEL_MODERATE && (f == RF_F_IDEA_TITLE || f == RF_F_SCRIPT_CONTENT));
        if (!required || map[f] >= 0) {
            continue;
        }
        if (header) {
            snprintf(msg, sizeof(msg),
                     "the header row has no %s column: every row will be refused (%s "
                     "validation)",
                     rf_field_name((rf_field)f), rf_vlevel_name(level));
        } else {
            char letters[4];
            rf_a1_col_name((uint32_t)f + 1, letters);
            snprintf(msg, sizeof(msg),
                     "column %s (%s) holds no value in this range: every row will be refused "
                     "(%s validation)",
                     letters, rf_field_name((rf_field)f), rf_vlevel_name(level));
        }
        bad |= add_error(val.errors, header ? v->row_start : 0, rf_field_name((rf_field)f), msg);
    }
    if (level == RF_VLEVEL_PERMISSIVE && rows.n > 0 && map[RF_F_IDEA_TITLE] < 0 &&
        map[RF_F_SCRIPT_CONTENT] < 0) {
        bad |= add_error(val.errors, header ? v->row_start : 0, "idea_title",
                         "neither an idea_title nor a script_content column was found: every "
                         "row will be refused");
    }
    if (v->truncated) {
        snprintf(msg, sizeof(msg),
                 "the range holds more than %lld data rows, the limit of one job: only the "
                 "first ones were read; give a bounded range (such as A1:J%lld) or split the "
                 "sheet",
                 (long long)max_rows, (long long)max_rows + 1);
        bad |= add_error(val.errors, 0, "range", msg);
    }
    if (rows.n == 0) {
        bad |= add_error(val.errors, 0, "range",
                         "the range has no data rows: check the range and that the sheet has "
                         "rows below its header");
    }
    bad |= json_object_set_new(validation, "level", json_string(rf_vlevel_name(level)));
    bad |= json_object_set_new(validation, "valid", json_boolean(json_array_size(val.errors) == 0));
    bad |= json_object_set(validation, "errors", val.errors);
    bad |= json_object_set_new(
        validation, "rows",
        json_pack("{s:I, s:I, s:I, s:I}", "accepted", (json_int_t)val.accepted, "refused",
                  (json_int_t)val.refused, "skipped", (json_int_t)val.skipped, "repaired",
                  (json_int_t)val.repaired));
    bad |= json_object_set_new(root, "sheet_id", json_string(sheet_id));
    bad |= json_object_set_new(root, "range", rf_json_string_lossy(range));
    bad |= json_object_set_new(root, "resolved_range", rf_json_string_lossy(v->range));
    bad |= json_object_set_new(root, "status", json_string("connected"));
    bad |= json_object_set_new(root, "access", json_string(rf_sheets_access_name(v->access)));
    if (service_account_email != NULL && service_account_email[0] != '\0') {
        bad |=
            json_object_set_new(root, "service_account_email", json_string(service_account_email));
    }
    bad |= json_object_set_new(root, "read_ms", json_integer(v->elapsed_ms));
    if (bad != 0) {
        rv = RF_ENOMEM;
        goto out;
    }
    *out = root;
    root = NULL;
out:
    json_decref(root);
    rf_validation_clear(&val);
    rf_rows_free(&rows);
    return rv;
}

rf_err
rf_sheets_connect(rf_sheets_client *c, const rf_sheets_connect_req *req,
                  const rf_sheets_hooks *hooks, json_t **out, rf_gerror *e)
{
    rf_sheet_values v;
    const char *range = req->range[0] != '\0' ? req->range : RF_SHEETS_DEFAULT_RANGE;
    const char *email = rf_sheets_client_email(c);
    json_t *warnings;
    rf_err rv;

    *out = NULL;
    rv = rf_sheets_fetch(c, req->sheet_id, range, req->gid, hooks, &v, e);
    if (rv != RF_OK) {
        goto out;
    }
    rv = rf_sheets_connect_report(&v, req->sheet_id, range, req->level,
                                  rf_sheets_client_config(c)->max_rows, email, out);
    if (rv != RF_OK) {
        rf_gerror_set(e, "internal_error", 0, NULL, "out of memory describing the sheet");
        goto out;
    }
    if (req->want_write) {
        char msg[512];
        if (rf_sheets_client_access(c) != RF_SHEETS_ACCESS_SERVICE_ACCOUNT) {
            snprintf(msg, sizeof(msg),
                     "results cannot be written back to this sheet: writing needs a service "
                     "account (API keys and public links can only read)");
        } else {
            snprintf(msg, sizeof(msg), "to write results back, share the sheet with %s as Editor",
                     email);
        }
        warnings = json_object_get(json_object_get(*out, "validation"), "warnings");
        if (json_array_append_new(warnings, rf_json_string_lossy(msg)) != 0) {
            json_decref(*out);
            *out = NULL;
            rv = RF_ENOMEM;
        }
    }
out:
    rf_sheet_values_clear(&v);
    return rv;
}
