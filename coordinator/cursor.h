/* Opaque page tokens (keyset pagination), base64url without padding:
 *   job lists: "j1|<sort>|<order>|<state or ->|<sort key>|<job id>": the
 *              position after the last job shown, valid only for the same
 *              sort, order and state filter;
 *   videos:    "r:<row_number>": the last sheet row shown.
 * A position, not an offset, so that jobs created between two pages neither
 * repeat nor go missing. */
#ifndef RF_CURSOR_H
#define RF_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rf_err.h"
#include "rf_proto.h"
#include "store.h"

#define RF_CURSOR_MAX 256 /* encoded token size, with NUL */

rf_err rf_cursor_job_encode(rf_job_sort sort, bool desc, const char *state, int64_t key,
                            const char *id, char *out, size_t len);

/* RF_EINVAL when the token is malformed or was made for another sort, order
 * or state filter. */
rf_err rf_cursor_job_decode(const char *token, rf_job_sort sort, bool desc, const char *state,
                            int64_t *key, char id[RF_ID_MAX]);

rf_err rf_cursor_row_encode(uint32_t row, char *out, size_t len);
rf_err rf_cursor_row_decode(const char *token, uint32_t *row);

#endif
