/* A validation error as users see it: the field it is about (a JSON path such
 * as "output.resolution"), a short machine reason ("required",
 * "invalid_value", ...) and a human message. Filled by request, source and
 * CSV validation; the API turns it into a 400 validation_error body. */
#ifndef RF_VERR_H
#define RF_VERR_H

#include <stddef.h>

#include <jansson.h>

#include "rf_err.h"

typedef struct rf_verr {
    char field[128];
    char reason[32];
    char message[512];
} rf_verr;

/* Fills *e (NULL-safe); the message is formatted, the others are copied and
 * truncated to fit. */
void rf_verr_set(rf_verr *e, const char *field, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Parses a request body that must be one JSON object (duplicate keys
 * refused) into *root, which the caller releases; otherwise RF_EINVAL with
 * field "body" and reason malformed_json or invalid_type. */
rf_err rf_verr_json_body(const char *body, size_t len, json_t **root, rf_verr *e);

#endif
