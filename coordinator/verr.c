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
