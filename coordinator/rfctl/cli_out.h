/* rfctl's output helpers: durations, terminal-width fitting, JSON field
 * access with defaults, and the one way errors are printed. Everything here
 * writes to the FILE it is given and allocates nothing the caller frees. */
#ifndef RF_CLI_OUT_H
#define RF_CLI_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "cli_http.h"

/* Exit codes, documented in docs/RFCTL.md. Never renumbered. */
enum {
    RF_CLI_EXIT_OK = 0,
    RF_CLI_EXIT_API = 1,     /* the API answered with an error */
    RF_CLI_EXIT_USAGE = 2,   /* bad command line */
    RF_CLI_EXIT_JOB = 3,     /* the watched job failed or was canceled */
    RF_CLI_EXIT_NET = 4,     /* no answer from the coordinator */
    RF_CLI_EXIT_TIMEOUT = 5, /* watch --timeout ran out first */
};

/* "1h02m", "3m05s", "42s", "0s"; "--" for a negative (unknown) duration. */
void rf_cli_fmt_duration(int64_t ms, char *buf, size_t len);

/* How many bytes of the UTF-8 string s fit in cols terminal columns, never
 * splitting a character (wide CJK characters count 2, unknown bytes 1). */
size_t rf_cli_fit(const char *s, int cols);

/* Prints s clipped to cols columns (cols <= 0: unclipped) followed by a
 * newline. */
void rf_cli_put_line(FILE *f, const char *s, int cols);

/* Field access that tolerates missing or mistyped fields. */
const char *rf_cli_str(const json_t *obj, const char *key, const char *def);
int64_t rf_cli_int(const json_t *obj, const char *key, int64_t def);
double rf_cli_num(const json_t *obj, const char *key, double def);

/* Prints an API error answer to f:
 *   rfctl: <what>: HTTP 400 validation_error: title is required
 *     detail: {"field":"title","reason":"required"}
 *     correlation id: req_...
 * or, for a transport failure, the network error. */
void rf_cli_print_error(FILE *f, const char *what, const rf_cli_resp *r);

/* Maps the outcome of rf_cli_http_do to an exit code: RF_ENET -> 4,
 * another failure -> 1, an answer >= 400 -> 1, else 0. */
int rf_cli_exit_for(rf_err rv, const rf_cli_resp *r);

#endif
