/* Validation error helper. */
#include "verr.h"

#include <stdarg.h>
#include <stdio.h>

void
rf_verr_set(rf_verr *e, const char *field, const char *reason, const char *fmt, ...)
{
    va_list ap;

    if (e == NULL) {
        return;
    }
    snprintf(e->field, sizeof(e->field), "%s", field != NULL ? field : "");
    snprintf(e->reason, sizeof(e->reason), "%s", reason != NULL ? reason : "");
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
}

rf_err
rf_verr_json_body(const char *body, size_t len, json_t **root, rf_verr *e)
{
    json_error_t jerr;

    *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (*root == NULL) {
        rf_verr_set(e, "body", "malformed_json", "malformed JSON at line %d, column %d: %s",
                    jerr.line, jerr.column, jerr.text);
        return RF_EINVAL;
    }
    if (!json_is_object(*root)) {
        rf_verr_set(e, "body", "invalid_type", "the request body must be a JSON object");
        json_decref(*root);
        *root = NULL;
        return RF_EINVAL;
    }
    return RF_OK;
}
