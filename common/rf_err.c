/* Error strings. Literals only, so callers may keep the pointer forever and
 * no allocation can fail on an error path. */
#include "rf_err.h"

const char *
rf_strerror(rf_err err)
{
    switch (err) {
    case RF_OK:
        return "success";
    case RF_ENOMEM:
        return "out of memory";
    case RF_EINVAL:
        return "invalid argument";
    case RF_EPROTO:
        return "malformed message";
    case RF_ETOOBIG:
        return "size limit exceeded";
    case RF_EVERSION:
        return "unsupported version";
    case RF_EIO:
        return "I/O error";
    case RF_ENOTFOUND:
        return "not found";
    case RF_ECONFLICT:
        return "state conflict";
    case RF_ESTORE:
        return "database error";
    case RF_ENET:
        return "network error";
    case RF_ETIMEDOUT:
        return "timed out";
    case RF_ECODEC:
        return "codec error";
    case RF_ETEXT:
        return "text layout error";
    case RF_EAUDIO:
        return "audio error";
    case RF_EUNSUPPORTED:
        return "not supported on this host";
    case RF_ECANCELED:
        return "canceled";
    }
    return "unknown error";
}
