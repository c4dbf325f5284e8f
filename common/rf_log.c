/* The log sink: the only process-wide mutable state. One mutex serialises
 * whole lines so that lines from different threads never interleave. */
#include "rf_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static const char *log_component = "rf";
static rf_log_level log_min = RF_LOG_INFO;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void
rf_log_init(const char *component, rf_log_level min_level)
{
    pthread_mutex_lock(&log_mu);
    if (component != NULL) {
        log_component = component;
    }
    if (min_level >= RF_LOG_DEBUG && min_level <= RF_LOG_ERROR) {
        log_min = min_level;
    }
    pthread_mutex_unlock(&log_mu);
}

rf_log_level
rf_log_level_parse(const char *s)
{
    if (s == NULL) {
        return RF_LOG_INFO;
    }
    if (strcasecmp(s, "debug") == 0) {
        return RF_LOG_DEBUG;
    }
    if (strcasecmp(s, "warn") == 0 || strcasecmp(s, "warning") == 0) {
        return RF_LOG_WARN;
    }
    if (strcasecmp(s, "error") == 0) {
        return RF_LOG_ERROR;
    }
    return RF_LOG_INFO;
}

void
rf_log(rf_log_level level, const char *fmt, ...)
{
    struct timespec ts;
    struct tm tm;
    char stamp[80];
    char msg[2048];
    va_list ap;
    size_t n;

    if (level < RF_LOG_DEBUG || level > RF_LOG_ERROR) {
        level = RF_LOG_ERROR;
    }
    /* Format outside the lock; only the write is serialised. */
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long)(ts.tv_nsec / 1000000) % 1000);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* One event is one line: a message ending in newline would add blanks. */
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
        msg[--n] = '\0';
    }

    pthread_mutex_lock(&log_mu);
    if (level >= log_min) {
        fprintf(stderr, "%s %s[%ld] %s %s\n", stamp, log_component, (long)getpid(),
                level_names[level], msg);
        fflush(stderr);
    }
    pthread_mutex_unlock(&log_mu);
}
