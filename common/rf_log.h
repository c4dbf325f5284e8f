/* Logging: one line per event on stderr,
 * "2026-11-22T10:00:00.123Z coordinator[1234] INFO message". The sink is the
 * only process-wide mutable state; it is thread-safe. */
#ifndef RF_LOG_H
#define RF_LOG_H

typedef enum rf_log_level {
    RF_LOG_DEBUG = 0,
    RF_LOG_INFO = 1,
    RF_LOG_WARN = 2,
    RF_LOG_ERROR = 3,
} rf_log_level;

/* Sets the component name printed on each line (string must outlive the
 * process, e.g. a literal) and the minimum level. */
void rf_log_init(const char *component, rf_log_level min_level);

/* Parses "debug", "info", "warn", "error"; returns RF_LOG_INFO otherwise. */
rf_log_level rf_log_level_parse(const char *s);

void rf_log(rf_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define rf_debug(...) rf_log(RF_LOG_DEBUG, __VA_ARGS__)
#define rf_info(...) rf_log(RF_LOG_INFO, __VA_ARGS__)
#define rf_warn(...) rf_log(RF_LOG_WARN, __VA_ARGS__)
#define rf_error(...) rf_log(RF_LOG_ERROR, __VA_ARGS__)

#endif
