/* The agent protocol: every message exchanged between the coordinator and
 * its agents, carried as one msgpack map per nng message (REQ/REP: the agent
 * asks, the coordinator answers). docs/PROTOCOL.md describes the same thing
 * for people; this header is the definition for code.
 *
 * Every message is a map with at least
 *   "v"    uint  protocol version (RF_PROTO_VERSION)
 *   "type" str   one of the RF_MSG_* names below
 * plus the fields of its type. Unknown keys are ignored (forward
 * compatibility); a missing required key, a wrong type, a string or array over
 * its limit, or a message over RF_MSG_MAX_BYTES is refused with an error.
 * A message with a higher major version ("v") than ours is refused with
 * RF_EVERSION so that an old peer fails loudly instead of misreading.
 */
#ifndef RF_PROTO_H
#define RF_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rf_err.h"

#define RF_PROTO_VERSION 1

/* Limits. Decoders refuse anything larger. */
#define RF_MSG_MAX_BYTES (1u << 20) /* one whole message */
#define RF_ID_MAX 64                /* ids, incl. NUL */
#define RF_NAME_MAX 64              /* short enum-like strings, incl. NUL */
#define RF_HOST_MAX 256             /* hostname, incl. NUL */
#define RF_PATH_MAX 1024            /* output path or URI, incl. NUL */
#define RF_TITLE_MAX 1024           /* bytes, excl. NUL */
#define RF_DESC_MAX 8192            /* bytes, excl. NUL */
#define RF_SCRIPT_MAX 65536         /* bytes, excl. NUL */
#define RF_ERRMSG_MAX 1024          /* error message, incl. NUL */
#define RF_MAX_ENCODERS 16          /* entries in hello.encoders */
#define RF_MAX_COLORS 8             /* template colours */

typedef enum rf_msg_type {
    RF_MSG_NONE = 0,
    RF_MSG_HELLO = 1,     /* agent -> coord: capabilities; reply WELCOME */
    RF_MSG_WELCOME = 2,   /* coord -> agent */
    RF_MSG_LEASE_REQ = 3, /* agent -> coord: wants a unit; reply UNIT or NO_WORK */
    RF_MSG_UNIT = 4,      /* coord -> agent: a leased work unit */
    RF_MSG_NO_WORK = 5,   /* coord -> agent: nothing to do now */
    RF_MSG_PROGRESS = 6,  /* agent -> coord: heartbeat; reply ACK or REFUSED */
    RF_MSG_COMPLETE = 7,  /* agent -> coord: unit done; reply ACK or REFUSED */
    RF_MSG_FAIL = 8,      /* agent -> coord: unit failed; reply ACK or REFUSED */
    RF_MSG_ACK = 9,       /* coord -> agent */
    RF_MSG_REFUSED = 10,  /* coord -> agent: stale lease, unknown agent, bad message */
} rf_msg_type;

/* Wire names ("hello", "welcome", "lease_req", "unit", "no_work",
 * "progress", "complete", "fail", "ack", "refused"); NULL if out of range. */
const char *rf_msg_type_name(rf_msg_type t);

typedef struct rf_hello {
    char agent_id[RF_ID_MAX]; /* chosen by the agent, stable across restarts */
    char hostname[RF_HOST_MAX];
    char version[RF_NAME_MAX]; /* agent software version */
    uint32_t cpu_cores;
    uint32_t slots;               /* units it runs at once */
    uint32_t gpus;                /* usable CUDA devices */
    char compositor[RF_NAME_MAX]; /* "cpu" or "cuda" */
    uint32_t n_encoders;
    char encoders[RF_MAX_ENCODERS][RF_NAME_MAX]; /* that actually opened, e.g. "libx264" */
} rf_hello;

typedef struct rf_welcome {
    char agent_id[RF_ID_MAX];
    uint32_t lease_ttl_ms; /* a lease lapses this long after the last heartbeat */
    uint32_t heartbeat_ms; /* send PROGRESS at least this often */
} rf_welcome;

typedef struct rf_lease_req {
    char agent_id[RF_ID_MAX];
    uint32_t free_slots;
} rf_lease_req;

/* One (row x rendition): all the agent needs to render it without asking. */
typedef struct rf_unit {
    char unit_id[RF_ID_MAX];
    char lease_id[RF_ID_MAX];
    char job_id[RF_ID_MAX];
    char item_id[RF_ID_MAX];
    uint32_t row_number;       /* 1-based row in the source sheet */
    uint64_t lease_expires_ms; /* wall clock, Unix epoch ms */
    /* rendition */
    char rendition[RF_NAME_MAX];   /* "youtube", "tiktok", "instagram", ... */
    uint32_t width, height;        /* even, 16..7680 */
    uint32_t fps;                  /* frames per second, 1..120 */
    uint32_t duration_ms;          /* requested length, 1..3600000 */
    char container[RF_NAME_MAX];   /* "mp4", "mov", "webm" */
    char video_codec[RF_NAME_MAX]; /* "h264", "h265", "vp9" */
    char audio_codec[RF_NAME_MAX]; /* "aac", "opus" */
    char preset[RF_NAME_MAX];      /* encoder speed preset, e.g. "veryfast" */
    char output_path[RF_PATH_MAX]; /* absolute path or URI of the final file */
    /* content */
    char *title;       /* heap, <= RF_TITLE_MAX, never NULL after decode */
    char *description; /* heap, <= RF_DESC_MAX, may be "" */
    char *script;      /* heap, <= RF_SCRIPT_MAX, never empty */
    char audience[RF_NAME_MAX * 4];
    char tone[RF_NAME_MAX];
    /* template */
    char template_id[RF_NAME_MAX];
    char style[RF_NAME_MAX]; /* "modern", "classic", "minimal", "corporate" */
    char voice[RF_NAME_MAX]; /* "female", "male", "neutral" */
    char font_family[RF_NAME_MAX];
    char logo_position[RF_NAME_MAX];
    uint32_t n_colors;
    /* Brand palette overriding the style's, in order: background, second
     * background (gradient end / band), accent, text. Entries not given keep
     * the style's; text, when not given, is chosen for contrast. */
    char colors[RF_MAX_COLORS][8]; /* "#RRGGBB" */
    double voice_speed;            /* 0.5..2.0, 1.0 = normal */
    double voice_pitch;            /* -12..12 semitones, 0 = normal */
} rf_unit;

typedef struct rf_no_work {
    uint32_t retry_ms; /* ask again after this long */
} rf_no_work;

typedef struct rf_progress {
    char agent_id[RF_ID_MAX];
    char unit_id[RF_ID_MAX];
    char lease_id[RF_ID_MAX];
    uint32_t frames_done;
    uint32_t frames_total;
    char stage[RF_NAME_MAX]; /* "audio", "render", "encode", "upload" */
} rf_progress;

typedef struct rf_complete {
    char agent_id[RF_ID_MAX];
    char unit_id[RF_ID_MAX];
    char lease_id[RF_ID_MAX];
    char output_path[RF_PATH_MAX];
    uint64_t size_bytes;
    char sha256[65];      /* 64 lowercase hex chars */
    uint32_t duration_ms; /* actual media duration */
    uint32_t frames;
    char encoder[RF_NAME_MAX];        /* libavcodec encoder name actually used */
    uint32_t render_ms;               /* wall time spent on the unit */
    char compositor[RF_NAME_MAX];     /* "cpu" or "cuda" */
    char encoder_note[RF_ERRMSG_MAX]; /* why faster encoders were passed over, or "" */
    char poster_path[RF_PATH_MAX];    /* JPEG poster frame, or "" */
    char captions_path[RF_PATH_MAX];  /* WebVTT captions, or "" */
} rf_complete;

typedef struct rf_fail {
    char agent_id[RF_ID_MAX];
    char unit_id[RF_ID_MAX];
    char lease_id[RF_ID_MAX];
    char error_code[RF_NAME_MAX]; /* e.g. "audio_generation_failed" */
    char error_message[RF_ERRMSG_MAX];
    bool retryable; /* a transient failure another try may fix */
} rf_fail;

typedef struct rf_ack {
    uint64_t lease_expires_ms; /* new expiry after a PROGRESS; 0 otherwise */
} rf_ack;

typedef struct rf_refused {
    char code[RF_NAME_MAX]; /* "stale_lease", "unknown_agent", "bad_message", "canceled" */
    char reason[RF_ERRMSG_MAX];
} rf_refused;

typedef struct rf_msg {
    rf_msg_type type;
    union {
        rf_hello hello;
        rf_welcome welcome;
        rf_lease_req lease_req;
        rf_unit unit;
        rf_no_work no_work;
        rf_progress progress;
        rf_complete complete;
        rf_fail fail;
        rf_ack ack;
        rf_refused refused;
    } u;
} rf_msg;

/* Encodes m into a malloc'd buffer (*out, *out_len); the caller frees it.
 * Validates m as the decoder would (RF_EINVAL on a field out of range,
 * RF_ETOOBIG over a limit) so that nothing undecodable is ever sent. */
rf_err rf_msg_encode(const rf_msg *m, uint8_t **out, size_t *out_len);

/* Decodes buf into *m (zeroed first). On failure returns RF_EPROTO,
 * RF_ETOOBIG or RF_EVERSION, writes a human-readable reason naming the field
 * into err (may be NULL) and leaves *m with nothing to free. Never reads past
 * buf + len. On success heap fields (unit strings) belong to *m: release
 * them with rf_msg_clear(). */
rf_err rf_msg_decode(const uint8_t *buf, size_t len, rf_msg *m, char *err, size_t err_len);

/* Frees heap fields and zeroes *m. NULL-safe, idempotent. */
void rf_msg_clear(rf_msg *m);

/* Deep copy of a unit (for keeping it beyond the message). */
rf_err rf_unit_copy(rf_unit *dst, const rf_unit *src);

#endif
