/* The msgpack codec for rf_msg.
 *
 * Every message type is described once, by a table of field descriptors
 * (name, kind, offset, limit, range check). The encoder, the decoder and the
 * validator all walk the same tables, so a field's name, wire type and limits
 * cannot drift apart between the two directions, and the range checks run on
 * the struct (validate_msg) both before encoding and after decoding.
 *
 * Untrusted input passes three gates before any field is read:
 *   1. its length (<= RF_MSG_MAX_BYTES) is checked before looking at it;
 *   2. scan_obj() walks the raw bytes without allocating: it refuses
 *      truncation, trailing bytes, reserved bytes, nesting deeper than the
 *      schema uses and more than MAX_OBJECTS objects, and it checks every
 *      declared container length against the bytes left. This matters
 *      because msgpack-c allocates count * sizeof(msgpack_object) as soon as
 *      it sees an array or map header, before the elements exist: five bytes
 *      "dd ff ff ff ff" would otherwise ask for ~100 GB;
 *   3. only then msgpack_unpack_next() builds the object tree in its zone,
 *      whose size is now bounded by MAX_OBJECTS (strings are not copied: the
 *      objects point into buf).
 */
#include "rf_proto.h"

#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rf_log.h"
#include "rf_util.h"

/* The schema nests at most two levels (top map -> array of strings). */
#define MAX_DEPTH 2
/* A full unit is ~80 objects; this bounds the zone to ~100 KB. */
#define MAX_OBJECTS 4096

typedef enum fkind {
    K_STR,    /* char[size], size incl. NUL */
    K_HSTR,   /* char *, at most size bytes excl. NUL; NULL encodes as "" */
    K_U32,    /* uint32_t */
    K_U64,    /* uint64_t, at most INT64_MAX so it survives int64 storage */
    K_BOOL,   /* bool */
    K_F64,    /* double, finite */
    K_STRARR, /* char[max_items][size] with a uint32_t count at count_off */
} fkind;

/* A range check on one value (a string for string kinds, the scalar
 * otherwise). Returns NULL when fine, else what was expected. */
typedef const char *(*fcheck)(const void *v);

typedef struct fdesc {
    const char *name; /* wire key == C field name */
    fkind kind;
    size_t off;
    size_t size;
    size_t count_off;
    uint32_t max_items;
    fcheck check;
} fdesc;

typedef struct mdesc {
    const char *name;
    const fdesc *fields;
    size_t n_fields;
} mdesc;

/* ---- range checks (the rules stated in rf_proto.h) ---- */

static const char *
chk_nonempty(const void *v)
{
    return ((const char *)v)[0] != '\0' ? NULL : "expected a non-empty string";
}

static const char *
chk_dim(const void *v)
{
    uint32_t x = *(const uint32_t *)v;

    return (x >= 16 && x <= 7680 && x % 2 == 0) ? NULL : "expected even integer 16..7680";
}

static const char *
chk_fps(const void *v)
{
    uint32_t x = *(const uint32_t *)v;

    return (x >= 1 && x <= 120) ? NULL : "expected integer 1..120";
}

static const char *
chk_duration(const void *v)
{
    uint32_t x = *(const uint32_t *)v;

    return (x >= 1 && x <= 3600000) ? NULL : "expected integer 1..3600000";
}

/* Written as !(in range) so that NaN fails too. */
static const char *
chk_speed(const void *v)
{
    double x = *(const double *)v;

    return (x >= 0.5 && x <= 2.0) ? NULL : "expected number 0.5..2.0";
}

static const char *
chk_pitch(const void *v)
{
    double x = *(const double *)v;

    return (x >= -12.0 && x <= 12.0) ? NULL : "expected number -12..12";
}

static bool
is_hex(char c, bool lower_only)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) {
        return true;
    }
    return !lower_only && c >= 'A' && c <= 'F';
}

static const char *
chk_color(const void *v)
{
    const char *s = v;

    if (strlen(s) != 7 || s[0] != '#') {
        return "expected \"#RRGGBB\"";
    }
    for (int i = 1; i < 7; i++) {
        if (!is_hex(s[i], false)) {
            return "expected \"#RRGGBB\"";
        }
    }
    return NULL;
}

static const char *
chk_sha256(const void *v)
{
    const char *s = v;

    if (strlen(s) != 64) {
        return "expected 64 lowercase hex characters";
    }
    for (int i = 0; i < 64; i++) {
        if (!is_hex(s[i], true)) {
            return "expected 64 lowercase hex characters";
        }
    }
    return NULL;
}

/* ---- the schema ---- */

#define F_STR(T, f, chk)                                                                           \
    {                                                                                              \
#f, K_STR, offsetof(T, f), sizeof(((T *)0)->f), 0, 0, chk                                  \
    }
#define F_HSTR(T, f, max, chk)                                                                     \
    {                                                                                              \
#f, K_HSTR, offsetof(T, f), max, 0, 0, chk                                                 \
    }
#define F_U32(T, f, chk)                                                                           \
    {                                                                                              \
#f, K_U32, offsetof(T, f), 0, 0, 0, chk                                                    \
    }
#define F_U64(T, f)                                                                                \
    {                                                                                              \
#f, K_U64, offsetof(T, f), 0, 0, 0, NULL                                                   \
    }
#define F_BOOL(T, f)                                                                               \
    {                                                                                              \
#f, K_BOOL, offsetof(T, f), 0, 0, 0, NULL                                                  \
    }
#define F_F64(T, f, chk)                                                                           \
    {                                                                                              \
#f, K_F64, offsetof(T, f), 0, 0, 0, chk                                                    \
    }
#define F_STRARR(T, f, n, max, chk)                                                                \
    {                                                                                              \
#f, K_STRARR, offsetof(T, f), sizeof(((T *)0)->f[0]), offsetof(T, n), max, chk             \
    }

static const fdesc hello_fields[] = {
    F_STR(rf_hello, agent_id, chk_nonempty),
    F_STR(rf_hello, hostname, NULL),
    F_STR(rf_hello, version, NULL),
    F_U32(rf_hello, cpu_cores, NULL),
    F_U32(rf_hello, slots, NULL),
    F_U32(rf_hello, gpus, NULL),
    F_STR(rf_hello, compositor, NULL),
    F_STRARR(rf_hello, encoders, n_encoders, RF_MAX_ENCODERS, NULL),
};

static const fdesc welcome_fields[] = {
    F_STR(rf_welcome, agent_id, chk_nonempty),
    F_U32(rf_welcome, lease_ttl_ms, NULL),
    F_U32(rf_welcome, heartbeat_ms, NULL),
};

static const fdesc lease_req_fields[] = {
    F_STR(rf_lease_req, agent_id, chk_nonempty),
    F_U32(rf_lease_req, free_slots, NULL),
};

static const fdesc unit_fields[] = {
    F_STR(rf_unit, unit_id, chk_nonempty),
    F_STR(rf_unit, lease_id, chk_nonempty),
    F_STR(rf_unit, job_id, chk_nonempty),
    F_STR(rf_unit, item_id, chk_nonempty),
    F_U32(rf_unit, row_number, NULL),
    F_U64(rf_unit, lease_expires_ms),
    F_STR(rf_unit, rendition, NULL),
    F_U32(rf_unit, width, chk_dim),
    F_U32(rf_unit, height, chk_dim),
    F_U32(rf_unit, fps, chk_fps),
    F_U32(rf_unit, duration_ms, chk_duration),
    F_STR(rf_unit, container, NULL),
    F_STR(rf_unit, video_codec, NULL),
    F_STR(rf_unit, audio_codec, NULL),
    F_STR(rf_unit, preset, NULL),
    F_STR(rf_unit, output_path, NULL),
    F_HSTR(rf_unit, title, RF_TITLE_MAX, NULL),
    F_HSTR(rf_unit, description, RF_DESC_MAX, NULL),
    F_HSTR(rf_unit, script, RF_SCRIPT_MAX, chk_nonempty),
    F_STR(rf_unit, audience, NULL),
    F_STR(rf_unit, tone, NULL),
    F_STR(rf_unit, template_id, NULL),
    F_STR(rf_unit, style, NULL),
    F_STR(rf_unit, voice, NULL),
    F_STR(rf_unit, font_family, NULL),
    F_STR(rf_unit, logo_position, NULL),
    F_STRARR(rf_unit, colors, n_colors, RF_MAX_COLORS, chk_color),
    F_F64(rf_unit, voice_speed, chk_speed),
    F_F64(rf_unit, voice_pitch, chk_pitch),
};

static const fdesc no_work_fields[] = {
    F_U32(rf_no_work, retry_ms, NULL),
};

static const fdesc progress_fields[] = {
    F_STR(rf_progress, agent_id, chk_nonempty), F_STR(rf_progress, unit_id, chk_nonempty),
    F_STR(rf_progress, lease_id, chk_nonempty), F_U32(rf_progress, frames_done, NULL),
    F_U32(rf_progress, frames_total, NULL),     F_STR(rf_progress, stage, NULL),
};

static const fdesc complete_fields[] = {
    F_STR(rf_complete, agent_id, chk_nonempty),
    F_STR(rf_complete, unit_id, chk_nonempty),
    F_STR(rf_complete, lease_id, chk_nonempty),
    F_STR(rf_complete, output_path, NULL),
    F_U64(rf_complete, size_bytes),
    F_STR(rf_complete, sha256, chk_sha256),
    F_U32(rf_complete, duration_ms, NULL),
    F_U32(rf_complete, frames, NULL),
    F_STR(rf_complete, encoder, NULL),
    F_U32(rf_complete, render_ms, NULL),
    F_STR(rf_complete, compositor, NULL),
    F_STR(rf_complete, encoder_note, NULL),
    F_STR(rf_complete, poster_path, NULL),
    F_STR(rf_complete, captions_path, NULL),
};

static const fdesc fail_fields[] = {
    F_STR(rf_fail, agent_id, chk_nonempty), F_STR(rf_fail, unit_id, chk_nonempty),
    F_STR(rf_fail, lease_id, chk_nonempty), F_STR(rf_fail, error_code, chk_nonempty),
    F_STR(rf_fail, error_message, NULL),    F_BOOL(rf_fail, retryable),
};

static const fdesc ack_fields[] = {
    F_U64(rf_ack, lease_expires_ms),
};

static const fdesc refused_fields[] = {
    F_STR(rf_refused, code, chk_nonempty),
    F_STR(rf_refused, reason, NULL),
};

#define MDESC(wire, arr)                                                                           \
    {                                                                                              \
        wire, arr, sizeof(arr) / sizeof(arr[0])                                                    \
    }

/* Indexed by rf_msg_type. */
static const mdesc messages[] = {
    {NULL, NULL, 0},
    MDESC("hello", hello_fields),
    MDESC("welcome", welcome_fields),
    MDESC("lease_req", lease_req_fields),
    MDESC("unit", unit_fields),
    MDESC("no_work", no_work_fields),
    MDESC("progress", progress_fields),
    MDESC("complete", complete_fields),
    MDESC("fail", fail_fields),
    MDESC("ack", ack_fields),
    MDESC("refused", refused_fields),
};

#define N_MESSAGES (sizeof(messages) / sizeof(messages[0]))

static const mdesc *
mdesc_for(rf_msg_type t)
{
    if ((int)t <= 0 || (size_t)t >= N_MESSAGES) {
        return NULL;
    }
    return &messages[t];
}

const char *
rf_msg_type_name(rf_msg_type t)
{
    const mdesc *md = mdesc_for(t);

    return md != NULL ? md->name : NULL;
}

/* ---- helpers ---- */

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool
utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp, min;

        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i < len) {
            return false;
        }
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += len;
    }
    return true;
}

/* Checks one string value already in memory: length limit (ETOOBIG),
 * encoding and range (range_rv). `what` names it, e.g. "unit.colors[1]". */
static rf_err
check_string(const char *what, const char *s, size_t n, size_t max_bytes, fcheck check,
             rf_err range_rv, char *err, size_t err_len)
{
    const char *why;

    if (n > max_bytes) {
        rf_errf(err, err_len, "%s: string too long (%zu bytes, max %zu)", what, n, max_bytes);
        return RF_ETOOBIG;
    }
    if (!utf8_valid((const unsigned char *)s, n)) {
        rf_errf(err, err_len, "%s: invalid UTF-8", what);
        return range_rv;
    }
    if (check != NULL) {
        why = check(s);
        if (why != NULL) {
            rf_errf(err, err_len, "%s: %s", what, why);
            return range_rv;
        }
    }
    return RF_OK;
}

/* Validates every field of m as stored in the struct. The encoder calls it
 * with range_rv = RF_EINVAL (a caller bug), the decoder with RF_EPROTO (a bad
 * message); both get RF_ETOOBIG for a size limit. */
static rf_err
validate_msg(const rf_msg *m, rf_err range_rv, char *err, size_t err_len)
{
    const mdesc *md = mdesc_for(m->type);
    const char *base = (const char *)&m->u;
    char what[96];
    rf_err rv;

    if (md == NULL) {
        rf_errf(err, err_len, "type: unknown message type %d", (int)m->type);
        return range_rv;
    }
    for (size_t i = 0; i < md->n_fields; i++) {
        const fdesc *f = &md->fields[i];
        const void *p = base + f->off;
        const char *why = NULL;

        snprintf(what, sizeof(what), "%s.%s", md->name, f->name);
        switch (f->kind) {
        case K_STR: {
            size_t n = strnlen(p, f->size);
            if (n == f->size) {
                rf_errf(err, err_len, "%s: string not terminated within %zu bytes", what, f->size);
                return RF_ETOOBIG;
            }
            rv = check_string(what, p, n, f->size - 1, f->check, range_rv, err, err_len);
            if (rv != RF_OK) {
                return rv;
            }
            break;
        }
        case K_HSTR: {
            const char *s = *(char *const *)p;
            if (s == NULL) {
                s = "";
            }
            /* strnlen: never scan an oversized caller string to its end. */
            rv = check_string(what, s, strnlen(s, f->size + 1), f->size, f->check, range_rv, err,
                              err_len);
            if (rv != RF_OK) {
                return rv;
            }
            break;
        }
        case K_STRARR: {
            uint32_t count = *(const uint32_t *)(base + f->count_off);
            if (count > f->max_items) {
                rf_errf(err, err_len, "%s: too many entries (%u, max %u)", what, count,
                        f->max_items);
                return RF_ETOOBIG;
            }
            for (uint32_t j = 0; j < count; j++) {
                const char *s = (const char *)p + (size_t)j * f->size;
                size_t n = strnlen(s, f->size);
                snprintf(what, sizeof(what), "%s.%s[%u]", md->name, f->name, j);
                if (n == f->size) {
                    rf_errf(err, err_len, "%s: string not terminated within %zu bytes", what,
                            f->size);
                    return RF_ETOOBIG;
                }
                rv = check_string(what, s, n, f->size - 1, f->check, range_rv, err, err_len);
                if (rv != RF_OK) {
                    return rv;
                }
            }
            break;
        }
        case K_U64:
            if (*(const uint64_t *)p > (uint64_t)INT64_MAX) {
                why = "expected integer 0..9223372036854775807";
            }
            break;
        case K_F64:
            if (!isfinite(*(const double *)p)) {
                why = "expected a finite number";
            }
            break;
        case K_U32:
        case K_BOOL:
            break;
        }
        if (why == NULL && f->check != NULL && f->kind != K_STR && f->kind != K_HSTR &&
            f->kind != K_STRARR) {
            why = f->check(p);
        }
        if (why != NULL) {
            rf_errf(err, err_len, "%s: %s", what, why);
            return range_rv;
        }
    }
    return RF_OK;
}

/* ---- encoding ---- */

static int
pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    int r = msgpack_pack_str(pk, n);

    if (r == 0 && n > 0) {
        r = msgpack_pack_str_body(pk, s, n);
    }
    return r;
}

static int
pack_field(msgpack_packer *pk, const fdesc *f, const char *base)
{
    const void *p = base + f->off;
    int r;

    r = pack_str(pk, f->name, strlen(f->name));
    if (r != 0) {
        return r;
    }
    switch (f->kind) {
    case K_STR:
        return pack_str(pk, p, strlen(p));
    case K_HSTR: {
        const char *s = *(char *const *)p;
        return s != NULL ? pack_str(pk, s, strlen(s)) : pack_str(pk, "", 0);
    }
    case K_U32:
        return msgpack_pack_uint32(pk, *(const uint32_t *)p);
    case K_U64:
        return msgpack_pack_uint64(pk, *(const uint64_t *)p);
    case K_BOOL:
        return *(const bool *)p ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    case K_F64:
        return msgpack_pack_double(pk, *(const double *)p);
    case K_STRARR: {
        uint32_t count = *(const uint32_t *)(base + f->count_off);
        r = msgpack_pack_array(pk, count);
        for (uint32_t j = 0; r == 0 && j < count; j++) {
            const char *s = (const char *)p + (size_t)j * f->size;
            r = pack_str(pk, s, strlen(s));
        }
        return r;
    }
    }
    return -1;
}

rf_err
rf_msg_encode(const rf_msg *m, uint8_t **out, size_t *out_len)
{
    rf_err rv = RF_OK;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    const mdesc *md;
    char why[256];
    int r;

    msgpack_sbuffer_init(&sb);
    if (out == NULL || out_len == NULL || m == NULL) {
        rv = RF_EINVAL;
        goto out;
    }
    *out = NULL;
    *out_len = 0;
    why[0] = '\0';
    rv = validate_msg(m, RF_EINVAL, why, sizeof(why));
    if (rv != RF_OK) {
        /* The signature has no error text, and this is a caller bug worth
         * seeing: say which field once, here. */
        rf_warn("rf_msg_encode: %s", why);
        goto out;
    }
    md = mdesc_for(m->type);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    /* Fixed key order (v, type, then the table) makes output deterministic. */
    r = msgpack_pack_map(&pk, 2 + md->n_fields);
    if (r == 0) {
        r = pack_str(&pk, "v", 1);
    }
    if (r == 0) {
        r = msgpack_pack_uint32(&pk, RF_PROTO_VERSION);
    }
    if (r == 0) {
        r = pack_str(&pk, "type", 4);
    }
    if (r == 0) {
        r = pack_str(&pk, md->name, strlen(md->name));
    }
    for (size_t i = 0; r == 0 && i < md->n_fields; i++) {
        r = pack_field(&pk, &md->fields[i], (const char *)&m->u);
    }
    if (r != 0) {
        rv = RF_ENOMEM;
        goto out;
    }
    if (sb.size > RF_MSG_MAX_BYTES) {
        rv = RF_ETOOBIG;
        goto out;
    }
    *out_len = sb.size;
    *out = (uint8_t *)msgpack_sbuffer_release(&sb);
out:
    msgpack_sbuffer_destroy(&sb);
    return rv;
}

/* ---- decoding ---- */

typedef struct scanner {
    const uint8_t *p;
    const uint8_t *end;
    uint32_t objects;
    const char *why; /* set on failure */
} scanner;

static bool
take_be(scanner *s, size_t n, uint64_t *v)
{
    if ((size_t)(s->end - s->p) < n) {
        s->why = "truncated";
        return false;
    }
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        *v = (*v << 8) | s->p[i];
    }
    s->p += n;
    return true;
}

/* Walks one msgpack object without allocating (see the comment at the top).
 * Recursion is bounded by MAX_DEPTH. */
static bool
scan_obj(scanner *s, int depth)
{
    uint8_t b;
    uint64_t skip = 0, n = 0;
    int container = 0; /* 1 array, 2 map */

    if (s->p >= s->end) {
        s->why = "truncated";
        return false;
    }
    if (++s->objects > MAX_OBJECTS) {
        s->why = "too many objects";
        return false;
    }
    b = *s->p++;
    if (b <= 0x7f || b >= 0xe0) {
        return true; /* fixint */
    }
    if (b <= 0x8f) {
        container = 2, n = b & 0x0f;
    } else if (b <= 0x9f) {
        container = 1, n = b & 0x0f;
    } else if (b <= 0xbf) {
        skip = b & 0x1f;
    } else {
        bool ok = true;
        switch (b) {
        case 0xc0: /* nil */
        case 0xc2: /* false */
        case 0xc3: /* true */
            break;
        case 0xc4: /* bin 8 */
        case 0xd9: /* str 8 */
            ok = take_be(s, 1, &skip);
            break;
        case 0xc5:
        case 0xda:
            ok = take_be(s, 2, &skip);
            break;
        case 0xc6:
        case 0xdb:
            ok = take_be(s, 4, &skip);
            break;
        case 0xc7: /* ext 8/16/32: length, then a type byte */
            ok = take_be(s, 1, &skip), skip++;
            break;
        case 0xc8:
            ok = take_be(s, 2, &skip), skip++;
            break;
        case 0xc9:
            ok = take_be(s, 4, &skip), skip++;
            break;
        case 0xcc:
        case 0xd0:
            skip = 1;
            break;
        case 0xcd:
        case 0xd1:
            skip = 2;
            break;
        case 0xca:
        case 0xce:
        case 0xd2:
            skip = 4;
            break;
        case 0xcb:
        case 0xcf:
        case 0xd3:
            skip = 8;
            break;
        case 0xd4: /* fixext 1/2/4/8/16: type byte + data */
            skip = 2;
            break;
        case 0xd5:
            skip = 3;
            break;
        case 0xd6:
            skip = 5;
            break;
        case 0xd7:
            skip = 9;
            break;
        case 0xd8:
            skip = 17;
            break;
        case 0xdc:
            container = 1, ok = take_be(s, 2, &n);
            break;
        case 0xdd:
            container = 1, ok = take_be(s, 4, &n);
            break;
        case 0xde:
            container = 2, ok = take_be(s, 2, &n);
            break;
        case 0xdf:
            container = 2, ok = take_be(s, 4, &n);
            break;
        default: /* 0xc1 is reserved */
            s->why = "invalid msgpack byte";
            return false;
        }
        if (!ok) {
            return false;
        }
    }
    if (skip > (uint64_t)(s->end - s->p)) {
        s->why = "truncated";
        return false;
    }
    s->p += skip;
    if (container != 0) {
        uint64_t items = container == 2 ? n * 2 : n;
        /* The top map is depth 0; containers may sit at depths < MAX_DEPTH. */
        if (depth >= MAX_DEPTH) {
            s->why = "nested too deeply";
            return false;
        }
        /* Every element takes at least one byte: a count larger than what
         * is left is a lie, refuse it before anyone allocates for it. */
        if (items > (uint64_t)(s->end - s->p)) {
            s->why = "truncated";
            return false;
        }
        for (uint64_t i = 0; i < items; i++) {
            if (!scan_obj(s, depth + 1)) {
                return false;
            }
        }
    }
    return true;
}

/* msgpack-c may give an empty string a NULL pointer; memcmp, memchr and
 * "%.*s" must never see that, even with a zero length. */
static const char *
str_ptr(const msgpack_object *o)
{
    return o->via.str.ptr != NULL ? o->via.str.ptr : "";
}

static bool
key_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);

    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(str_ptr(k), name, n) == 0;
}

static const msgpack_object *
map_get(const msgpack_object_map *map, const char *name)
{
    for (uint32_t i = 0; i < map->size; i++) {
        if (key_is(&map->ptr[i].key, name)) {
            return &map->ptr[i].val;
        }
    }
    return NULL;
}

/* Copies a msgpack string into a fixed buffer of size bytes (incl. NUL). */
static rf_err
load_str(const char *what, const msgpack_object *o, char *dst, size_t size, char *err,
         size_t err_len)
{
    if (o->type != MSGPACK_OBJECT_STR) {
        rf_errf(err, err_len, "%s: expected string", what);
        return RF_EPROTO;
    }
    if (o->via.str.size > size - 1) {
        rf_errf(err, err_len, "%s: string too long (%u bytes, max %zu)", what, o->via.str.size,
                size - 1);
        return RF_ETOOBIG;
    }
    if (memchr(str_ptr(o), '\0', o->via.str.size) != NULL) {
        rf_errf(err, err_len, "%s: string contains a NUL byte", what);
        return RF_EPROTO;
    }
    memcpy(dst, str_ptr(o), o->via.str.size);
    dst[o->via.str.size] = '\0';
    return RF_OK;
}

static rf_err
load_field(const char *mname, const fdesc *f, const msgpack_object *o, char *base, char *err,
           size_t err_len)
{
    char what[96];
    void *p = base + f->off;
    rf_err rv;

    snprintf(what, sizeof(what), "%s.%s", mname, f->name);
    switch (f->kind) {
    case K_STR:
        return load_str(what, o, p, f->size, err, err_len);
    case K_HSTR: {
        char *s;
        if (o->type != MSGPACK_OBJECT_STR) {
            rf_errf(err, err_len, "%s: expected string", what);
            return RF_EPROTO;
        }
        if (o->via.str.size > f->size) {
            rf_errf(err, err_len, "%s: string too long (%u bytes, max %zu)", what, o->via.str.size,
                    f->size);
            return RF_ETOOBIG;
        }
        s = malloc((size_t)o->via.str.size + 1);
        if (s == NULL) {
            rf_errf(err, err_len, "%s: out of memory", what);
            return RF_ENOMEM;
        }
        rv = load_str(what, o, s, (size_t)o->via.str.size + 1, err, err_len);
        if (rv != RF_OK) {
            free(s);
            return rv;
        }
        *(char **)p = s;
        return RF_OK;
    }
    case K_U32:
    case K_U64:
        if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
            rf_errf(err, err_len, "%s: expected unsigned integer", what);
            return RF_EPROTO;
        }
        if (f->kind == K_U32) {
            if (o->via.u64 > UINT32_MAX) {
                rf_errf(err, err_len, "%s: expected integer 0..4294967295", what);
                return RF_EPROTO;
            }
            *(uint32_t *)p = (uint32_t)o->via.u64;
        } else {
            *(uint64_t *)p = o->via.u64;
        }
        return RF_OK;
    case K_BOOL:
        if (o->type != MSGPACK_OBJECT_BOOLEAN) {
            rf_errf(err, err_len, "%s: expected boolean", what);
            return RF_EPROTO;
        }
        *(bool *)p = o->via.boolean;
        return RF_OK;
    case K_F64:
        if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64) {
            *(double *)p = o->via.f64;
        } else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            *(double *)p = (double)o->via.u64;
        } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
            *(double *)p = (double)o->via.i64;
        } else {
            rf_errf(err, err_len, "%s: expected number", what);
            return RF_EPROTO;
        }
        return RF_OK;
    case K_STRARR:
        if (o->type != MSGPACK_OBJECT_ARRAY) {
            rf_errf(err, err_len, "%s: expected array of strings", what);
            return RF_EPROTO;
        }
        if (o->via.array.size > f->max_items) {
            rf_errf(err, err_len, "%s: too many entries (%u, max %u)", what, o->via.array.size,
                    f->max_items);
            return RF_ETOOBIG;
        }
        for (uint32_t j = 0; j < o->via.array.size; j++) {
            snprintf(what, sizeof(what), "%s.%s[%u]", mname, f->name, j);
            rv = load_str(what, &o->via.array.ptr[j], (char *)p + (size_t)j * f->size, f->size, err,
                          err_len);
            if (rv != RF_OK) {
                return rv;
            }
        }
        *(uint32_t *)(base + f->count_off) = o->via.array.size;
        return RF_OK;
    }
    return RF_EPROTO;
}

static rf_err
decode_tree(const msgpack_object *root, rf_msg *m, char *err, size_t err_len)
{
    const msgpack_object_map *map;
    const msgpack_object *v, *t;
    const mdesc *md = NULL;
    rf_err rv;

    if (root->type != MSGPACK_OBJECT_MAP) {
        rf_errf(err, err_len, "message: expected a map");
        return RF_EPROTO;
    }
    map = &root->via.map;
    /* Keys must be unique strings: with duplicates, two readers could
     * disagree on which value counts. */
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *k = &map->ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR) {
            rf_errf(err, err_len, "message: map key %u is not a string", i);
            return RF_EPROTO;
        }
        for (uint32_t j = 0; j < i; j++) {
            const msgpack_object *k2 = &map->ptr[j].key;
            if (k2->via.str.size == k->via.str.size &&
                memcmp(str_ptr(k2), str_ptr(k), k->via.str.size) == 0) {
                rf_errf(err, err_len, "message: duplicate key \"%.*s\"",
                        (int)(k->via.str.size > 64 ? 64 : k->via.str.size), str_ptr(k));
                return RF_EPROTO;
            }
        }
    }
    /* Version before type: a newer peer may send types we do not know. */
    v = map_get(map, "v");
    if (v == NULL) {
        rf_errf(err, err_len, "v: missing");
        return RF_EPROTO;
    }
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 == 0) {
        rf_errf(err, err_len, "v: expected positive integer");
        return RF_EPROTO;
    }
    if (v->via.u64 > RF_PROTO_VERSION) {
        rf_errf(err, err_len, "v: version %llu not supported (this side speaks %d)",
                (unsigned long long)v->via.u64, RF_PROTO_VERSION);
        return RF_EVERSION;
    }
    t = map_get(map, "type");
    if (t == NULL) {
        rf_errf(err, err_len, "type: missing");
        return RF_EPROTO;
    }
    if (t->type != MSGPACK_OBJECT_STR) {
        rf_errf(err, err_len, "type: expected string");
        return RF_EPROTO;
    }
    for (size_t i = 1; i < N_MESSAGES; i++) {
        if (key_is(t, messages[i].name)) {
            md = &messages[i];
            m->type = (rf_msg_type)i;
            break;
        }
    }
    if (md == NULL) {
        rf_errf(err, err_len, "type: unknown message type \"%.*s\"",
                (int)(t->via.str.size > 64 ? 64 : t->via.str.size), str_ptr(t));
        return RF_EPROTO;
    }
    for (size_t i = 0; i < md->n_fields; i++) {
        const fdesc *f = &md->fields[i];
        const msgpack_object *o = map_get(map, f->name);
        if (o == NULL) {
            rf_errf(err, err_len, "%s.%s: missing", md->name, f->name);
            return RF_EPROTO;
        }
        rv = load_field(md->name, f, o, (char *)&m->u, err, err_len);
        if (rv != RF_OK) {
            return rv;
        }
    }
    /* Decoded unit strings are never NULL (rf_proto.h promises it); the
     * loop above set them all, since every field is required. */
    return validate_msg(m, RF_EPROTO, err, err_len);
}

rf_err
rf_msg_decode(const uint8_t *buf, size_t len, rf_msg *m, char *err, size_t err_len)
{
    rf_err rv = RF_OK;
    msgpack_unpacked up;
    msgpack_unpack_return ur;
    scanner sc;
    size_t off = 0;

    msgpack_unpacked_init(&up);
    rf_errf(err, err_len, "%s", "");
    if (m == NULL) {
        rv = RF_EINVAL;
        goto out;
    }
    memset(m, 0, sizeof(*m));
    if (buf == NULL || len == 0) {
        rf_errf(err, err_len, "message: empty");
        rv = RF_EPROTO;
        goto out;
    }
    if (len > RF_MSG_MAX_BYTES) {
        rf_errf(err, err_len, "message: %zu bytes, over the %u byte limit", len, RF_MSG_MAX_BYTES);
        rv = RF_ETOOBIG;
        goto out;
    }
    /* fixmap, map 16 or map 32 */
    if ((buf[0] & 0xf0) != 0x80 && buf[0] != 0xde && buf[0] != 0xdf) {
        rf_errf(err, err_len, "message: expected a map");
        rv = RF_EPROTO;
        goto out;
    }
    sc.p = buf;
    sc.end = buf + len;
    sc.objects = 0;
    sc.why = NULL;
    if (!scan_obj(&sc, 0)) {
        rf_errf(err, err_len, "message: %s", sc.why != NULL ? sc.why : "malformed");
        rv = RF_EPROTO;
        goto out;
    }
    if (sc.p != sc.end) {
        rf_errf(err, err_len, "message: %zu trailing bytes after the map", (size_t)(sc.end - sc.p));
        rv = RF_EPROTO;
        goto out;
    }
    ur = msgpack_unpack_next(&up, (const char *)buf, len, &off);
    if (ur != MSGPACK_UNPACK_SUCCESS || off != len) {
        rf_errf(err, err_len, "message: malformed msgpack");
        rv = RF_EPROTO;
        goto out;
    }
    rv = decode_tree(&up.data, m, err, err_len);
out:
    msgpack_unpacked_destroy(&up);
    if (rv != RF_OK && m != NULL) {
        rf_msg_clear(m);
    }
    return rv;
}

void
rf_msg_clear(rf_msg *m)
{
    if (m == NULL) {
        return;
    }
    if (m->type == RF_MSG_UNIT) {
        free(m->u.unit.title);
        free(m->u.unit.description);
        free(m->u.unit.script);
    }
    memset(m, 0, sizeof(*m));
}

static rf_err
dup_opt(const char *s, char **out)
{
    *out = NULL;
    if (s == NULL) {
        return RF_OK;
    }
    *out = strdup(s);
    return *out != NULL ? RF_OK : RF_ENOMEM;
}

rf_err
rf_unit_copy(rf_unit *dst, const rf_unit *src)
{
    rf_err rv;

    if (dst == NULL || src == NULL || dst == src) {
        return RF_EINVAL;
    }
    memcpy(dst, src, sizeof(*dst));
    dst->title = dst->description = dst->script = NULL;
    rv = dup_opt(src->title, &dst->title);
    if (rv != RF_OK) {
        goto out;
    }
    rv = dup_opt(src->description, &dst->description);
    if (rv != RF_OK) {
        goto out;
    }
    rv = dup_opt(src->script, &dst->script);
out:
    if (rv != RF_OK) {
        free(dst->title);
        free(dst->description);
        free(dst->script);
        memset(dst, 0, sizeof(*dst));
    }
    return rv;
}
