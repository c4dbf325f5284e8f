/* `rfctl watch`: polls a job's progress and videos until the job is
 * completed, failed or canceled, drawing either a live block (progress bar,
 * counters, ETA, one line per item in flight, redrawn in place with ANSI
 * cursor movement) on a terminal, or plain timestamped lines otherwise.
 * Item events (an item completed, failed or was skipped) scroll above the
 * live block in both modes. */
#ifndef RF_CLI_WATCH_H
#define RF_CLI_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cli_http.h"
#include "rf_err.h"

typedef struct rf_cli_watch_opts {
    long interval_ms; /* poll period; <= 0: 1000 */
    long timeout_s;   /* give up after this long; <= 0: never */
    long grace_ms;    /* how long the coordinator may stay unreachable after
                         the first answer; <= 0: 30000 */
    bool tty;         /* redraw in place (else plain lines) */
    int cols;         /* terminal width for clipping; <= 0: 80 */
    bool utf8;        /* draw the bar with block characters */
    FILE *out;        /* progress output; NULL: stdout */
} rf_cli_watch_opts;

/* Watches job_id (as given; it is escaped here). On RF_OK the job reached a
 * terminal state, copied into final_state (size len). Failures, already
 * reported on stderr: RF_ENOTFOUND (no such job), RF_EPROTO (another API
 * error), RF_ENET (no answer at first, or for longer than grace_ms),
 * RF_ETIMEDOUT (timeout_s passed), RF_ENOMEM. */
rf_err rf_cli_watch(rf_cli_http *h, const char *job_id, const rf_cli_watch_opts *opts,
                    char *final_state, size_t len);

#endif
