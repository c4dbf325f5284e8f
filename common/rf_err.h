/* Error codes shared by every component. Codes are never renumbered; a
 * retired code keeps its number and its string. */
#ifndef RF_ERR_H
#define RF_ERR_H

typedef enum rf_err {
    RF_OK = 0,
    RF_ENOMEM = 1,        /* allocation failed */
    RF_EINVAL = 2,        /* invalid argument or input value */
    RF_EPROTO = 3,        /* malformed or truncated wire message */
    RF_ETOOBIG = 4,       /* input exceeds a documented size limit */
    RF_EVERSION = 5,      /* unsupported protocol or schema version */
    RF_EIO = 6,           /* file or device I/O failed */
    RF_ENOTFOUND = 7,     /* no such object */
    RF_ECONFLICT = 8,     /* state conflict: stale lease, wrong job state */
    RF_ESTORE = 9,        /* database error */
    RF_ENET = 10,         /* transport error */
    RF_ETIMEDOUT = 11,    /* operation timed out */
    RF_ECODEC = 12,       /* encoder/decoder/muxer error */
    RF_ETEXT = 13,        /* text layout or rasterisation failed */
    RF_EAUDIO = 14,       /* speech synthesis or audio processing failed */
    RF_EUNSUPPORTED = 15, /* feature or backend not available on this host */
    RF_ECANCELED = 16,    /* the work was canceled (lease lost, job canceled) */
} rf_err;

/* Returns a string literal describing err; never NULL. */
const char *rf_strerror(rf_err err);

#endif
