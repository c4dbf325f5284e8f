/* Wire format tests: round trips, the golden file, and refusal of every kind
 * of malformed input (each decode must give an error or a valid message,
 * never a crash; the sanitizer builds run this same file).
 *
 * `test_proto --write-golden DATA_DIR CORPUS_DIR` (re)writes
 * DATA_DIR/unit_v1.msgpack and the fuzz seeds; run it only on purpose, the
 * golden bytes are meant to stay fixed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>
#include <msgpack.h>

#include "rf_proto.h"
#include "rf_util.h"

#ifndef RF_TEST_DATA_DIR
#error "RF_TEST_DATA_DIR must be defined by the build"
#endif

/* ---- fixtures: every field set to a non-default value ---- */

static void
fill_hello(rf_hello *h)
{
    strcpy(h->agent_id, "agent-7f3a");
    strcpy(h->hostname, "render-node-12.example.net");
    strcpy(h->version, "0.1.0-test");
    h->cpu_cores = 32;
    h->slots = 3;
    h->gpus = 2;
    strcpy(h->compositor, "cuda");
    h->n_encoders = 3;
    strcpy(h->encoders[0], "h264_nvenc");
    strcpy(h->encoders[1], "hevc_nvenc");
    strcpy(h->encoders[2], "libx264");
}

/* The golden file pins this exact unit: change it only together with
 * tests/data/unit_v1.msgpack and a protocol version bump. */
static void
fill_unit(rf_unit *u)
{
    strcpy(u->unit_id, "un_01JDQ8Z6W3M4K5N6P7R8S9T0VW");
    strcpy(u->lease_id, "ls_01JDQ8Z7A1B2C3D4E5F6G7H8J9");
    strcpy(u->job_id, "job_01JDQ8YZZZ0000000000000000");
    strcpy(u->item_id, "item_01JDQ8Z000000000000000042");
    u->row_number = 42;
    u->lease_expires_ms = 1763805600123ULL;
    strcpy(u->rendition, "tiktok");
    u->width = 1080;
    u->height = 1920;
    u->fps = 30;
    u->duration_ms = 45000;
    strcpy(u->container, "mp4");
    strcpy(u->video_codec, "h264");
    strcpy(u->audio_codec, "aac");
    strcpy(u->preset, "veryfast");
    strcpy(u->output_path, "/srv/renderfarm/out/job_01/item_42_tiktok.mp4");
    u->title = strdup("Caf\xc3\xa9 \xe2\x98\x95 \xe2\x80\x94 10 tips for better espresso");
    u->description = strdup("A short guide.\nSecond line with \"quotes\".");
    u->script = strdup("Welcome! \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xd0\x9f\xd1\x80\xd0\xb8"
                       "\xd0\xb2\xd0\xb5\xd1\x82 \xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 "
                       "\xf0\x9f\x8e\xac\nFirst, grind fresh beans.");
    strcpy(u->audience, "home baristas, coffee beginners");
    strcpy(u->tone, "friendly");
    strcpy(u->template_id, "tmpl_modern_1");
    strcpy(u->style, "modern");
    strcpy(u->voice, "female");
    strcpy(u->font_family, "Noto Sans");
    strcpy(u->logo_position, "top-right");
    u->n_colors = 3;
    strcpy(u->colors[0], "#1A2B3C");
    strcpy(u->colors[1], "#ffffff");
    strcpy(u->colors[2], "#FF6600");
    u->voice_speed = 1.25;
    u->voice_pitch = -2.5;
}

static void
make_msg(rf_msg_type t, rf_msg *m)
{
    memset(m, 0, sizeof(*m));
    m->type = t;
    switch (t) {
    case RF_MSG_HELLO:
        fill_hello(&m->u.hello);
        break;
    case RF_MSG_WELCOME:
        strcpy(m->u.welcome.agent_id, "agent-7f3a");
        m->u.welcome.lease_ttl_ms = 30000;
        m->u.welcome.heartbeat_ms = 5000;
        break;
    case RF_MSG_LEASE_REQ:
        strcpy(m->u.lease_req.agent_id, "agent-7f3a");
        m->u.lease_req.free_slots = 2;
        break;
    case RF_MSG_UNIT:
        fill_unit(&m->u.unit);
        break;
    case RF_MSG_NO_WORK:
        m->u.no_work.retry_ms = 2500;
        break;
    case RF_MSG_PROGRESS:
        strcpy(m->u.progress.agent_id, "agent-7f3a");
        strcpy(m->u.progress.unit_id, "un_1");
        strcpy(m->u.progress.lease_id, "ls_1");
        m->u.progress.frames_done = 120;
        m->u.progress.frames_total = 1350;
        strcpy(m->u.progress.stage, "render");
        break;
    case RF_MSG_COMPLETE:
        strcpy(m->u.complete.agent_id, "agent-7f3a");
        strcpy(m->u.complete.unit_id, "un_1");
        strcpy(m->u.complete.lease_id, "ls_1");
        strcpy(m->u.complete.output_path, "/srv/out/job/item.mp4");
        m->u.complete.size_bytes = 5000000000ULL; /* > 32 bits on purpose */
        strcpy(m->u.complete.sha256,
               "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        m->u.complete.duration_ms = 45040;
        m->u.complete.frames = 1351;
        strcpy(m->u.complete.encoder, "libx264");
        m->u.complete.render_ms = 81234;
        strcpy(m->u.complete.compositor, "cuda");
        strcpy(m->u.complete.encoder_note, "h264_nvenc: no NVIDIA driver");
        strcpy(m->u.complete.poster_path, "/srv/out/job/item.jpg");
        strcpy(m->u.complete.captions_path, "/srv/out/job/item.vtt");
        break;
    case RF_MSG_FAIL:
        strcpy(m->u.fail.agent_id, "agent-7f3a");
        strcpy(m->u.fail.unit_id, "un_1");
        strcpy(m->u.fail.lease_id, "ls_1");
        strcpy(m->u.fail.error_code, "audio_generation_failed");
        strcpy(m->u.fail.error_message, "espeak-ng: voice not found");
        m->u.fail.retryable = true;
        break;
    case RF_MSG_ACK:
        m->u.ack.lease_expires_ms = 1763805630123ULL;
        break;
    case RF_MSG_REFUSED:
        strcpy(m->u.refused.code, "stale_lease");
        strcpy(m->u.refused.reason, "lease ls_1 was superseded by ls_2");
        break;
    default:
        fail_msg("no fixture for type %d", (int)t);
    }
}

static void
assert_opt_string_equal(const char *a, const char *b)
{
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a, b);
}

/* Field by field, so a failure names the field that differs. */
static void
assert_msg_eq(const rf_msg *a, const rf_msg *b)
{
    assert_int_equal(a->type, b->type);
    switch (a->type) {
    case RF_MSG_HELLO: {
        const rf_hello *x = &a->u.hello, *y = &b->u.hello;
        assert_string_equal(x->agent_id, y->agent_id);
        assert_string_equal(x->hostname, y->hostname);
        assert_string_equal(x->version, y->version);
        assert_int_equal(x->cpu_cores, y->cpu_cores);
        assert_int_equal(x->slots, y->slots);
        assert_int_equal(x->gpus, y->gpus);
        assert_string_equal(x->compositor, y->compositor);
        assert_int_equal(x->n_encoders, y->n_encoders);
        for (uint32_t i = 0; i < x->n_encoders; i++) {
            assert_string_equal(x->encoders[i], y->encoders[i]);
        }
        break;
    }
    case RF_MSG_WELCOME:
        assert_string_equal(a->u.welcome.agent_id, b->u.welcome.agent_id);
        assert_int_equal(a->u.welcome.lease_ttl_ms, b->u.welcome.lease_ttl_ms);
        assert_int_equal(a->u.welcome.heartbeat_ms, b->u.welcome.heartbeat_ms);
        break;
    case RF_MSG_LEASE_REQ:
        assert_string_equal(a->u.lease_req.agent_id, b->u.lease_req.agent_id);
        assert_int_equal(a->u.lease_req.free_slots, b->u.lease_req.free_slots);
        break;
    case RF_MSG_UNIT: {
        const rf_unit *x = &a->u.unit, *y = &b->u.unit;
        assert_string_equal(x->unit_id, y->unit_id);
        assert_string_equal(x->lease_id, y->lease_id);
        assert_string_equal(x->job_id, y->job_id);
        assert_string_equal(x->item_id, y->item_id);
        assert_int_equal(x->row_number, y->row_number);
        assert_int_equal(x->lease_expires_ms, y->lease_expires_ms);
        assert_string_equal(x->rendition, y->rendition);
        assert_int_equal(x->width, y->width);
        assert_int_equal(x->height, y->height);
        assert_int_equal(x->fps, y->fps);
        assert_int_equal(x->duration_ms, y->duration_ms);
        assert_string_equal(x->container, y->container);
        assert_string_equal(x->video_codec, y->video_codec);
        assert_string_equal(x->audio_codec, y->audio_codec);
        assert_string_equal(x->preset, y->preset);
        assert_string_equal(x->output_path, y->output_path);
        assert_opt_string_equal(x->title, y->title);
        assert_opt_string_equal(x->description, y->description);
        assert_opt_string_equal(x->script, y->script);
        assert_string_equal(x->audience, y->audience);
        assert_string_equal(x->tone, y->tone);
        assert_string_equal(x->template_id, y->template_id);
        assert_string_equal(x->style, y->style);
        assert_string_equal(x->voice, y->voice);
        assert_string_equal(x->font_family, y->font_family);
        assert_string_equal(x->logo_position, y->logo_position);
        assert_int_equal(x->n_colors, y->n_colors);
        for (uint32_t i = 0; i < x->n_colors; i++) {
            assert_string_equal(x->colors[i], y->colors[i]);
        }
        assert_true(x->voice_speed == y->voice_speed);
        assert_true(x->voice_pitch == y->voice_pitch);
        break;
    }
    case RF_MSG_NO_WORK:
        assert_int_equal(a->u.no_work.retry_ms, b->u.no_work.retry_ms);
        break;
    case RF_MSG_PROGRESS: {
        const rf_progress *x = &a->u.progress, *y = &b->u.progress;
        assert_string_equal(x->agent_id, y->agent_id);
        assert_string_equal(x->unit_id, y->unit_id);
        assert_string_equal(x->lease_id, y->lease_id);
        assert_int_equal(x->frames_done, y->frames_done);
        assert_int_equal(x->frames_total, y->frames_total);
        assert_string_equal(x->stage, y->stage);
        break;
    }
    case RF_MSG_COMPLETE: {
        const rf_complete *x = &a->u.complete, *y = &b->u.complete;
        assert_string_equal(x->agent_id, y->agent_id);
        assert_string_equal(x->unit_id, y->unit_id);
        assert_string_equal(x->lease_id, y->lease_id);
        assert_string_equal(x->output_path, y->output_path);
        assert_int_equal(x->size_bytes, y->size_bytes);
        assert_string_equal(x->sha256, y->sha256);
        assert_int_equal(x->duration_ms, y->duration_ms);
        assert_int_equal(x->frames, y->frames);
        assert_string_equal(x->encoder, y->encoder);
        assert_int_equal(x->render_ms, y->render_ms);
        assert_string_equal(x->compositor, y->compositor);
        assert_string_equal(x->encoder_note, y->encoder_note);
        assert_string_equal(x->poster_path, y->poster_path);
        assert_string_equal(x->captions_path, y->captions_path);
        break;
    }
    case RF_MSG_FAIL: {
        const rf_fail *x = &a->u.fail, *y = &b->u.fail;
        assert_string_equal(x->agent_id, y->agent_id);
        assert_string_equal(x->unit_id, y->unit_id);
        assert_string_equal(x->lease_id, y->lease_id);
        assert_string_equal(x->error_code, y->error_code);
        assert_string_equal(x->error_message, y->error_message);
        assert_int_equal(x->retryable, y->retryable);
        break;
    }
    case RF_MSG_ACK:
        assert_int_equal(a->u.ack.lease_expires_ms, b->u.ack.lease_expires_ms);
        break;
    case RF_MSG_REFUSED:
        assert_string_equal(a->u.refused.code, b->u.refused.code);
        assert_string_equal(a->u.refused.reason, b->u.refused.reason);
        break;
    default:
        fail_msg("unexpected type %d", (int)a->type);
    }
}

static void
encode_ok(const rf_msg *m, uint8_t **buf, size_t *len)
{
    assert_int_equal(rf_msg_encode(m, buf, len), RF_OK);
    assert_non_null(*buf);
    assert_true(*len > 0);
}

/* ---- rewriting an encoded map: drop or replace one key ---- */

typedef enum vkind {
    V_NIL,
    V_TRUE,
    V_INT,          /* signed, i */
    V_UINT,         /* u */
    V_F32,          /* d */
    V_F64,          /* d */
    V_STR,          /* s, n bytes */
    V_BIN,          /* n zero bytes */
    V_ARRAY0,       /* [] */
    V_MAP0,         /* {} */
    V_ARRAY_INT,    /* [1] */
    V_ARRAY_NESTED, /* [[1]] */
    V_STR_ARRAY,    /* n strings, each s */
} vkind;

typedef struct val {
    vkind k;
    int64_t i;
    uint64_t u;
    double d;
    const char *s;
    size_t n;
} val;

static void
pack_val(msgpack_packer *pk, const val *v)
{
    switch (v->k) {
    case V_NIL:
        msgpack_pack_nil(pk);
        break;
    case V_TRUE:
        msgpack_pack_true(pk);
        break;
    case V_INT:
        msgpack_pack_int64(pk, v->i);
        break;
    case V_UINT:
        msgpack_pack_uint64(pk, v->u);
        break;
    case V_F32:
        msgpack_pack_float(pk, (float)v->d);
        break;
    case V_F64:
        msgpack_pack_double(pk, v->d);
        break;
    case V_STR:
        msgpack_pack_str(pk, v->n);
        msgpack_pack_str_body(pk, v->s, v->n);
        break;
    case V_BIN: {
        char *z = calloc(1, v->n + 1);
        assert_non_null(z);
        msgpack_pack_bin(pk, v->n);
        msgpack_pack_bin_body(pk, z, v->n);
        free(z);
        break;
    }
    case V_ARRAY0:
        msgpack_pack_array(pk, 0);
        break;
    case V_MAP0:
        msgpack_pack_map(pk, 0);
        break;
    case V_ARRAY_INT:
        msgpack_pack_array(pk, 1);
        msgpack_pack_int(pk, 1);
        break;
    case V_ARRAY_NESTED:
        msgpack_pack_array(pk, 1);
        msgpack_pack_array(pk, 1);
        msgpack_pack_int(pk, 1);
        break;
    case V_STR_ARRAY:
        msgpack_pack_array(pk, v->n);
        for (size_t i = 0; i < v->n; i++) {
            msgpack_pack_str(pk, strlen(v->s));
            msgpack_pack_str_body(pk, v->s, strlen(v->s));
        }
        break;
    }
}

/* Re-packs the map in (buf, len) with `key` removed (v == NULL) or set to v
 * (appended if absent). The result is malloc'd. */
static void
rewrite(const uint8_t *buf, size_t len, const char *key, const val *v, uint8_t **out,
        size_t *out_len)
{
    msgpack_unpacked up;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    size_t off = 0;
    uint32_t n_keep = 0;
    bool found = false;
    size_t klen = strlen(key);

    msgpack_unpacked_init(&up);
    assert_int_equal(msgpack_unpack_next(&up, (const char *)buf, len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(up.data.type, MSGPACK_OBJECT_MAP);
    const msgpack_object_map *map = &up.data.via.map;
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *k = &map->ptr[i].key;
        bool match = k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
                     memcmp(k->via.str.ptr, key, klen) == 0;
        found = found || match;
        n_keep += match ? 0 : 1;
    }
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n_keep + (v != NULL ? 1 : 0));
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *k = &map->ptr[i].key;
        bool match = k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
                     memcmp(k->via.str.ptr, key, klen) == 0;
        if (match) {
            continue;
        }
        msgpack_pack_object(&pk, map->ptr[i].key);
        msgpack_pack_object(&pk, map->ptr[i].val);
    }
    if (v != NULL) {
        msgpack_pack_str(&pk, klen);
        msgpack_pack_str_body(&pk, key, klen);
        pack_val(&pk, v);
    }
    msgpack_unpacked_destroy(&up);
    *out_len = sb.size;
    *out = (uint8_t *)msgpack_sbuffer_release(&sb);
    msgpack_sbuffer_destroy(&sb);
}

/* Encodes the fixture of type t, applies (key, v) and decodes: returns the
 * decode result and leaves the error text in err. */
static rf_err
decode_modified(rf_msg_type t, const char *key, const val *v, char *err, size_t err_len)
{
    rf_msg m, d;
    uint8_t *buf = NULL, *mod = NULL;
    size_t len = 0, mod_len = 0;
    rf_err rv;

    make_msg(t, &m);
    encode_ok(&m, &buf, &len);
    rewrite(buf, len, key, v, &mod, &mod_len);
    rv = rf_msg_decode(mod, mod_len, &d, err, err_len);
    if (rv == RF_OK) {
        rf_msg_clear(&d);
    } else {
        /* A failed decode leaves nothing behind. */
        assert_int_equal(d.type, RF_MSG_NONE);
    }
    rf_msg_clear(&m);
    free(buf);
    free(mod);
    return rv;
}

static const rf_msg_type all_types[] = {
    RF_MSG_HELLO,    RF_MSG_WELCOME,  RF_MSG_LEASE_REQ, RF_MSG_UNIT, RF_MSG_NO_WORK,
    RF_MSG_PROGRESS, RF_MSG_COMPLETE, RF_MSG_FAIL,      RF_MSG_ACK,  RF_MSG_REFUSED,
};
#define N_TYPES (sizeof(all_types) / sizeof(all_types[0]))

/* Lists the keys of the encoded fixture of type t (including v and type). */
static size_t
fixture_keys(rf_msg_type t, char keys[][32], size_t max, msgpack_object_type *types)
{
    rf_msg m;
    uint8_t *buf = NULL;
    size_t len = 0, off = 0, n = 0;
    msgpack_unpacked up;

    make_msg(t, &m);
    encode_ok(&m, &buf, &len);
    msgpack_unpacked_init(&up);
    assert_int_equal(msgpack_unpack_next(&up, (const char *)buf, len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    for (uint32_t i = 0; i < up.data.via.map.size && n < max; i++, n++) {
        const msgpack_object_kv *kv = &up.data.via.map.ptr[i];
        assert_true(kv->key.via.str.size < 32);
        memcpy(keys[n], kv->key.via.str.ptr, kv->key.via.str.size);
        keys[n][kv->key.via.str.size] = '\0';
        types[n] = kv->val.type;
    }
    msgpack_unpacked_destroy(&up);
    rf_msg_clear(&m);
    free(buf);
    return n;
}

/* ---- tests ---- */

static void
test_type_names(void **state)
{
    const char *names[] = {"hello",    "welcome",  "lease_req", "unit", "no_work",
                           "progress", "complete", "fail",      "ack",  "refused"};

    for (size_t i = 0; i < N_TYPES; i++) {
        assert_string_equal(rf_msg_type_name(all_types[i]), names[i]);
    }
    assert_null(rf_msg_type_name(RF_MSG_NONE));
    assert_null(rf_msg_type_name((rf_msg_type)11));
    assert_null(rf_msg_type_name((rf_msg_type)-1));
}

static void
test_roundtrip_all_types(void **state)
{
    for (size_t i = 0; i < N_TYPES; i++) {
        rf_msg m, d;
        uint8_t *buf = NULL, *buf2 = NULL;
        size_t len = 0, len2 = 0;
        char err[256];

        make_msg(all_types[i], &m);
        encode_ok(&m, &buf, &len);
        assert_int_equal(rf_msg_decode(buf, len, &d, err, sizeof(err)), RF_OK);
        assert_msg_eq(&m, &d);
        /* Deterministic: the decoded copy encodes to the same bytes. */
        encode_ok(&d, &buf2, &len2);
        assert_int_equal(len, len2);
        assert_memory_equal(buf, buf2, len);
        rf_msg_clear(&m);
        rf_msg_clear(&d);
        free(buf);
        free(buf2);
    }
}

static void
golden_path(char *path, size_t len)
{
    assert_int_equal(rf_fmt(path, len, "%s/unit_v1.msgpack", RF_TEST_DATA_DIR), RF_OK);
}

static void
test_golden_unit(void **state)
{
    char path[1024], err[256];
    char *data = NULL;
    size_t data_len = 0, len = 0;
    uint8_t *buf = NULL;
    rf_msg want, got;

    golden_path(path, sizeof(path));
    assert_int_equal(rf_read_file(path, RF_MSG_MAX_BYTES, &data, &data_len), RF_OK);
    assert_int_equal(rf_msg_decode((const uint8_t *)data, data_len, &got, err, sizeof(err)), RF_OK);
    make_msg(RF_MSG_UNIT, &want);
    assert_msg_eq(&want, &got);
    /* The encoder must still produce exactly the committed bytes. */
    encode_ok(&want, &buf, &len);
    assert_int_equal(len, data_len);
    assert_memory_equal(buf, data, len);
    /* Spot-check the wire layout itself: a map whose first keys are v, type. */
    assert_int_equal((uint8_t)data[0], 0xde); /* map 16: 31 keys > 15 */
    assert_int_equal((uint8_t)data[1], 0);
    assert_int_equal((uint8_t)data[2], 31);
    assert_memory_equal(data + 3, "\xa1v\x01\xa4type\xa4unit", 13);
    rf_msg_clear(&want);
    rf_msg_clear(&got);
    free(buf);
    free(data);
}

static void
test_truncated_prefixes(void **state)
{
    for (size_t t = 0; t < N_TYPES; t++) {
        rf_msg m, d;
        uint8_t *buf = NULL;
        size_t len = 0;
        char err[256];

        make_msg(all_types[t], &m);
        encode_ok(&m, &buf, &len);
        for (size_t n = 0; n < len; n++) {
            /* Copy so ASan sees any read past the prefix. */
            uint8_t *p = malloc(n + 1);
            assert_non_null(p);
            memcpy(p, buf, n);
            rf_err rv = rf_msg_decode(n == 0 ? NULL : p, n, &d, err, sizeof(err));
            assert_int_equal(rv, RF_EPROTO);
            assert_int_equal(d.type, RF_MSG_NONE);
            assert_true(strlen(err) > 0);
            free(p);
        }
        rf_msg_clear(&m);
        free(buf);
    }
}

static void
test_missing_fields(void **state)
{
    for (size_t t = 0; t < N_TYPES; t++) {
        char keys[64][32];
        msgpack_object_type types[64];
        size_t n = fixture_keys(all_types[t], keys, 64, types);

        assert_true(n >= 3);
        for (size_t k = 0; k < n; k++) {
            char err[256];
            rf_err rv = decode_modified(all_types[t], keys[k], NULL, err, sizeof(err));
            assert_int_equal(rv, RF_EPROTO);
            /* The error names the missing key. */
            assert_non_null(strstr(err, keys[k]));
            assert_non_null(strstr(err, "missing"));
        }
    }
}

static void
test_wrong_types(void **state)
{
    static const val for_str[] = {
        {.k = V_INT, .i = 7}, {.k = V_NIL}, {.k = V_ARRAY0}, {.k = V_BIN, .n = 3}, {.k = V_TRUE}};
    static const val for_uint[] = {
        {.k = V_STR, .s = "7", .n = 1}, {.k = V_INT, .i = -1}, {.k = V_NIL}, {.k = V_TRUE},
        {.k = V_F64, .d = 1.5},         {.k = V_ARRAY0}};
    static const val for_bool[] = {
        {.k = V_INT, .i = 1}, {.k = V_STR, .s = "true", .n = 4}, {.k = V_NIL}};
    static const val for_float[] = {
        {.k = V_STR, .s = "1.0", .n = 3}, {.k = V_NIL}, {.k = V_TRUE}, {.k = V_ARRAY0}};
    static const val for_array[] = {{.k = V_STR, .s = "x", .n = 1},
                                    {.k = V_NIL},
                                    {.k = V_MAP0},
                                    {.k = V_ARRAY_INT},
                                    {.k = V_INT, .i = 3}};
    size_t checked = 0;

    for (size_t t = 0; t < N_TYPES; t++) {
        char keys[64][32];
        msgpack_object_type types[64];
        size_t n = fixture_keys(all_types[t], keys, 64, types);

        for (size_t k = 0; k < n; k++) {
            const val *vals;
            size_t nv;
            switch (types[k]) {
            case MSGPACK_OBJECT_STR:
                vals = for_str, nv = sizeof(for_str) / sizeof(for_str[0]);
                break;
            case MSGPACK_OBJECT_POSITIVE_INTEGER:
                vals = for_uint, nv = sizeof(for_uint) / sizeof(for_uint[0]);
                break;
            case MSGPACK_OBJECT_BOOLEAN:
                vals = for_bool, nv = sizeof(for_bool) / sizeof(for_bool[0]);
                break;
            case MSGPACK_OBJECT_FLOAT64:
                vals = for_float, nv = sizeof(for_float) / sizeof(for_float[0]);
                break;
            case MSGPACK_OBJECT_ARRAY:
                vals = for_array, nv = sizeof(for_array) / sizeof(for_array[0]);
                break;
            default:
                fail_msg("fixture key %s has unexpected type %d", keys[k], (int)types[k]);
                return;
            }
            for (size_t j = 0; j < nv; j++) {
                char err[256];
                rf_err rv = decode_modified(all_types[t], keys[k], &vals[j], err, sizeof(err));
                if (rv != RF_EPROTO) {
                    fail_msg("%s.%s with value kind %d: got %d (%s)",
                             rf_msg_type_name(all_types[t]), keys[k], (int)vals[j].k, rv, err);
                }
                assert_non_null(strstr(err, keys[k]));
                checked++;
            }
        }
    }
    assert_true(checked > 200);
}

static void
test_number_coercions(void **state)
{
    char err[256];
    val v;

    /* Doubles accept ints (either sign) and float32. */
    v = (val){.k = V_INT, .i = -3};
    assert_int_equal(decode_modified(RF_MSG_UNIT, "voice_pitch", &v, err, sizeof(err)), RF_OK);
    v = (val){.k = V_UINT, .u = 2};
    assert_int_equal(decode_modified(RF_MSG_UNIT, "voice_speed", &v, err, sizeof(err)), RF_OK);
    v = (val){.k = V_F32, .d = 0.75};
    assert_int_equal(decode_modified(RF_MSG_UNIT, "voice_speed", &v, err, sizeof(err)), RF_OK);
    /* uint32 fields: 2^32 - 1 fits, 2^32 does not, negatives never. */
    v = (val){.k = V_UINT, .u = UINT32_MAX};
    assert_int_equal(decode_modified(RF_MSG_PROGRESS, "frames_done", &v, err, sizeof(err)), RF_OK);
    v = (val){.k = V_UINT, .u = (uint64_t)UINT32_MAX + 1};
    assert_int_equal(decode_modified(RF_MSG_PROGRESS, "frames_done", &v, err, sizeof(err)),
                     RF_EPROTO);
    assert_non_null(strstr(err, "progress.frames_done"));
    v = (val){.k = V_INT, .i = -1};
    assert_int_equal(decode_modified(RF_MSG_PROGRESS, "frames_total", &v, err, sizeof(err)),
                     RF_EPROTO);
    /* uint64 fields stop at INT64_MAX so they survive int64 storage. */
    v = (val){.k = V_UINT, .u = (uint64_t)INT64_MAX};
    assert_int_equal(decode_modified(RF_MSG_ACK, "lease_expires_ms", &v, err, sizeof(err)), RF_OK);
    v = (val){.k = V_UINT, .u = (uint64_t)INT64_MAX + 1};
    assert_int_equal(decode_modified(RF_MSG_ACK, "lease_expires_ms", &v, err, sizeof(err)),
                     RF_EPROTO);
    /* A small value in a wide encoding (uint64 form of 30) is still 30. */
    {
        rf_msg m, d;
        uint8_t *buf = NULL, *mod = NULL;
        size_t len = 0, mod_len = 0;
        make_msg(RF_MSG_WELCOME, &m);
        encode_ok(&m, &buf, &len);
        v = (val){.k = V_INT, .i = 30}; /* packed by msgpack-c as a positive fixint */
        rewrite(buf, len, "lease_ttl_ms", &v, &mod, &mod_len);
        assert_int_equal(rf_msg_decode(mod, mod_len, &d, err, sizeof(err)), RF_OK);
        assert_int_equal(d.u.welcome.lease_ttl_ms, 30);
        rf_msg_clear(&m);
        rf_msg_clear(&d);
        free(buf);
        free(mod);
    }
}

typedef struct range_case {
    rf_msg_type type;
    const char *key;
    val v;
    rf_err want;
    const char *err_has;
} range_case;

static void
test_ranges_on_decode(void **state)
{
    static const char hex63[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a";
    static const char hex_upper[] =
        "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
    const range_case cases[] = {
        {RF_MSG_UNIT, "width", {.k = V_UINT, .u = 16}, RF_OK, NULL},
        {RF_MSG_UNIT, "width", {.k = V_UINT, .u = 7680}, RF_OK, NULL},
        {RF_MSG_UNIT,
         "width",
         {.k = V_UINT, .u = 14},
         RF_EPROTO,
         "unit.width: expected even integer 16..7680"},
        {RF_MSG_UNIT, "width", {.k = V_UINT, .u = 1081}, RF_EPROTO, "unit.width"},
        {RF_MSG_UNIT, "height", {.k = V_UINT, .u = 7682}, RF_EPROTO, "unit.height"},
        {RF_MSG_UNIT, "height", {.k = V_UINT, .u = 0}, RF_EPROTO, "unit.height"},
        {RF_MSG_UNIT, "fps", {.k = V_UINT, .u = 0}, RF_EPROTO, "unit.fps"},
        {RF_MSG_UNIT, "fps", {.k = V_UINT, .u = 121}, RF_EPROTO, "unit.fps"},
        {RF_MSG_UNIT, "fps", {.k = V_UINT, .u = 120}, RF_OK, NULL},
        {RF_MSG_UNIT, "duration_ms", {.k = V_UINT, .u = 0}, RF_EPROTO, "unit.duration_ms"},
        {RF_MSG_UNIT, "duration_ms", {.k = V_UINT, .u = 3600001}, RF_EPROTO, "unit.duration_ms"},
        {RF_MSG_UNIT, "duration_ms", {.k = V_UINT, .u = 3600000}, RF_OK, NULL},
        {RF_MSG_UNIT, "voice_speed", {.k = V_F64, .d = 0.49}, RF_EPROTO, "unit.voice_speed"},
        {RF_MSG_UNIT, "voice_speed", {.k = V_F64, .d = 2.01}, RF_EPROTO, "unit.voice_speed"},
        {RF_MSG_UNIT, "voice_speed", {.k = V_F64, .d = NAN}, RF_EPROTO, "unit.voice_speed"},
        {RF_MSG_UNIT, "voice_speed", {.k = V_F64, .d = 0.5}, RF_OK, NULL},
        {RF_MSG_UNIT, "voice_pitch", {.k = V_F64, .d = -12.01}, RF_EPROTO, "unit.voice_pitch"},
        {RF_MSG_UNIT, "voice_pitch", {.k = V_F64, .d = INFINITY}, RF_EPROTO, "unit.voice_pitch"},
        {RF_MSG_UNIT, "voice_pitch", {.k = V_F64, .d = 12.0}, RF_OK, NULL},
        {RF_MSG_UNIT,
         "colors",
         {.k = V_STR_ARRAY, .s = "#12345G", .n = 1},
         RF_EPROTO,
         "unit.colors[0]"},
        {RF_MSG_UNIT,
         "colors",
         {.k = V_STR_ARRAY, .s = "123456", .n = 2},
         RF_EPROTO,
         "unit.colors[0]"},
        {RF_MSG_UNIT,
         "colors",
         {.k = V_STR_ARRAY, .s = "#1234567", .n = 1},
         RF_ETOOBIG,
         "unit.colors[0]"},
        {RF_MSG_UNIT,
         "colors",
         {.k = V_STR_ARRAY, .s = "#abcdef", .n = RF_MAX_COLORS},
         RF_OK,
         NULL},
        {RF_MSG_UNIT,
         "colors",
         {.k = V_STR_ARRAY, .s = "#abcdef", .n = RF_MAX_COLORS + 1},
         RF_ETOOBIG,
         "unit.colors"},
        {RF_MSG_UNIT, "colors", {.k = V_ARRAY0}, RF_OK, NULL},
        {RF_MSG_UNIT, "script", {.k = V_STR, .s = "", .n = 0}, RF_EPROTO, "unit.script"},
        {RF_MSG_UNIT, "description", {.k = V_STR, .s = "", .n = 0}, RF_OK, NULL},
        {RF_MSG_UNIT, "lease_id", {.k = V_STR, .s = "", .n = 0}, RF_EPROTO, "unit.lease_id"},
        {RF_MSG_UNIT, "title", {.k = V_STR, .s = "a\0b", .n = 3}, RF_EPROTO, "NUL"},
        {RF_MSG_UNIT, "title", {.k = V_STR, .s = "caf\xe9", .n = 4}, RF_EPROTO, "UTF-8"},
        {RF_MSG_UNIT, "tone", {.k = V_STR, .s = "\xed\xa0\x80", .n = 3}, RF_EPROTO, "UTF-8"},
        {RF_MSG_UNIT, "tone", {.k = V_STR, .s = "\xc0\xaf", .n = 2}, RF_EPROTO, "UTF-8"},
        {RF_MSG_COMPLETE,
         "sha256",
         {.k = V_STR, .s = hex63, .n = 63},
         RF_EPROTO,
         "complete.sha256"},
        {RF_MSG_COMPLETE,
         "sha256",
         {.k = V_STR, .s = hex_upper, .n = 64},
         RF_EPROTO,
         "complete.sha256"},
        {RF_MSG_HELLO,
         "encoders",
         {.k = V_STR_ARRAY, .s = "libx264", .n = RF_MAX_ENCODERS},
         RF_OK,
         NULL},
        {RF_MSG_HELLO,
         "encoders",
         {.k = V_STR_ARRAY, .s = "libx264", .n = RF_MAX_ENCODERS + 1},
         RF_ETOOBIG,
         "hello.encoders"},
        {RF_MSG_HELLO, "agent_id", {.k = V_STR, .s = "", .n = 0}, RF_EPROTO, "hello.agent_id"},
        {RF_MSG_REFUSED, "code", {.k = V_STR, .s = "", .n = 0}, RF_EPROTO, "refused.code"},
        {RF_MSG_FAIL, "error_message", {.k = V_STR, .s = "", .n = 0}, RF_OK, NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        rf_err rv = decode_modified(cases[i].type, cases[i].key, &cases[i].v, err, sizeof(err));
        if (rv != cases[i].want) {
            fail_msg("case %zu (%s): got %d want %d (%s)", i, cases[i].key, rv, cases[i].want, err);
        }
        if (cases[i].err_has != NULL && strstr(err, cases[i].err_has) == NULL) {
            fail_msg("case %zu: error \"%s\" lacks \"%s\"", i, err, cases[i].err_has);
        }
    }
}

static void
test_string_limits(void **state)
{
    char *big = malloc(RF_SCRIPT_MAX + 2);
    char err[256];
    val v;

    assert_non_null(big);
    memset(big, 'x', RF_SCRIPT_MAX + 1);
    big[RF_SCRIPT_MAX + 1] = '\0';

    v = (val){.k = V_STR, .s = big, .n = RF_SCRIPT_MAX};
    assert_int_equal(decode_modified(RF_MSG_UNIT, "script", &v, err, sizeof(err)), RF_OK);
    v.n = RF_SCRIPT_MAX + 1;
    assert_int_equal(decode_modified(RF_MSG_UNIT, "script", &v, err, sizeof(err)), RF_ETOOBIG);
    assert_non_null(strstr(err, "unit.script"));
    v.n = RF_TITLE_MAX;
    assert_int_equal(decode_modified(RF_MSG_UNIT, "title", &v, err, sizeof(err)), RF_OK);
    v.n = RF_TITLE_MAX + 1;
    assert_int_equal(decode_modified(RF_MSG_UNIT, "title", &v, err, sizeof(err)), RF_ETOOBIG);
    assert_non_null(strstr(err, "unit.title"));
    v.n = RF_DESC_MAX + 1;
    assert_int_equal(decode_modified(RF_MSG_UNIT, "description", &v, err, sizeof(err)), RF_ETOOBIG);
    /* Fixed buffers hold size - 1 bytes plus the NUL. */
    v.n = RF_ID_MAX - 1;
    assert_int_equal(decode_modified(RF_MSG_PROGRESS, "lease_id", &v, err, sizeof(err)), RF_OK);
    v.n = RF_ID_MAX;
    assert_int_equal(decode_modified(RF_MSG_PROGRESS, "lease_id", &v, err, sizeof(err)),
                     RF_ETOOBIG);
    assert_non_null(strstr(err, "progress.lease_id"));
    v.n = RF_PATH_MAX;
    assert_int_equal(decode_modified(RF_MSG_UNIT, "output_path", &v, err, sizeof(err)), RF_ETOOBIG);
    v.n = RF_ERRMSG_MAX;
    assert_int_equal(decode_modified(RF_MSG_FAIL, "error_message", &v, err, sizeof(err)),
                     RF_ETOOBIG);
    v.n = RF_NAME_MAX * 4;
    assert_int_equal(decode_modified(RF_MSG_UNIT, "audience", &v, err, sizeof(err)), RF_ETOOBIG);
    v.n = RF_NAME_MAX * 4 - 1;
    assert_int_equal(decode_modified(RF_MSG_UNIT, "audience", &v, err, sizeof(err)), RF_OK);
    free(big);
}

static void
test_encode_validates(void **state)
{
    rf_msg m;
    uint8_t *buf = NULL;
    size_t len = 0;
    char *big;

    make_msg(RF_MSG_UNIT, &m);
    m.u.unit.width = 1081;
    assert_int_equal(rf_msg_encode(&m, &buf, &len), RF_EINVAL);
    assert_null(buf);
    m.u.unit.width = 1080;
    m.u.unit.voice_speed = NAN;
    assert_int_equal(rf_msg_encode(&m, &buf, &len), RF_EINVAL);
    m.u.unit.voice_speed = 1.0;
    m.u.unit.n_colors = RF_MAX_COLORS + 1;
    assert_int_equal(rf_msg_encode(&m, &buf, &len), RF_ETOOBIG);
    m.u.unit.n_colors = 1;
    strcpy(m.u.unit.colors[0], "red");
    assert_int_equal(rf_msg_encode(&m, &buf, &len), RF_EINVAL);
    strcpy(m.u.unit.colors[0], "#00aa00");
    big = malloc(RF_SCRIPT_MAX + 2);
    assert_non_null(big);
    memset(big, 's', RF_SCRIPT_MAX + 1);
    big[RF_SCRIPT_MAX + 1] = '\0';
    free(m.u.unit.script);
    m.u.unit.script = big;
    assert_int_equal(rf_msg_encode(&m, &buf, &len), RF_ETOOBIG);
    big[RF_SCRIPT_MAX] = '\0';
    assert_int_equal(rf_msg_encode(&m, &buf, &len), RF_OK);
    free(buf);
    buf = NULL;
    /* A NULL script is "" and the script must not be empty. */
    free(m.u.unit.script);
    m.u.unit.script = NULL;
    assert_int_equal(rf_msg_encode(&m, &buf, &len), RF_EINVAL);
    /* A NULL description encodes as "". */
    m.u.unit.script = strdup("hello");
    free(m.u.unit.description);
    m.u.unit.description = NULL;
    assert_int_equal(rf_msg_encode(&m, &buf, &len), RF_OK);
    {
        rf_msg d;
        assert_int_equal(rf_msg_decode(buf, len, &d, NULL, 0), RF_OK);
        assert_string_equal(d.u.unit.description, "");
        rf_msg_clear(&d);
    }
    free(buf);
    buf = NULL;
    /* Unterminated fixed string: refused, not over-read. */
    memset(m.u.unit.tone, 'a', sizeof(m.u.unit.tone));
    assert_int_equal(rf_msg_encode(&m, &buf, &len), RF_ETOOBIG);
    rf_msg_clear(&m);

    make_msg(RF_MSG_COMPLETE, &m);
    m.u.complete.sha256[10] = 'G';
    assert_int_equal(rf_msg_encode(&m, &buf, &len), RF_EINVAL);
    m.type = RF_MSG_NONE;
    assert_int_equal(rf_msg_encode(&m, &buf, &len), RF_EINVAL);
    m.type = (rf_msg_type)42;
    assert_int_equal(rf_msg_encode(&m, &buf, &len), RF_EINVAL);
    assert_int_equal(rf_msg_encode(NULL, &buf, &len), RF_EINVAL);
    assert_null(buf);
}

static void
test_version_and_type(void **state)
{
    char err[256];
    val v;

    v = (val){.k = V_UINT, .u = RF_PROTO_VERSION + 1};
    assert_int_equal(decode_modified(RF_MSG_UNIT, "v", &v, err, sizeof(err)), RF_EVERSION);
    assert_non_null(strstr(err, "v:"));
    v = (val){.k = V_UINT, .u = UINT64_MAX};
    assert_int_equal(decode_modified(RF_MSG_HELLO, "v", &v, err, sizeof(err)), RF_EVERSION);
    v = (val){.k = V_UINT, .u = 0};
    assert_int_equal(decode_modified(RF_MSG_HELLO, "v", &v, err, sizeof(err)), RF_EPROTO);
    v = (val){.k = V_STR, .s = "bogus", .n = 5};
    assert_int_equal(decode_modified(RF_MSG_HELLO, "type", &v, err, sizeof(err)), RF_EPROTO);
    assert_non_null(strstr(err, "bogus"));
    v = (val){.k = V_STR, .s = "hello", .n = 5};
    /* A unit relabelled as hello lacks hello's fields. */
    assert_int_equal(decode_modified(RF_MSG_UNIT, "type", &v, err, sizeof(err)), RF_EPROTO);
    assert_non_null(strstr(err, "hello."));

    /* Version is checked before type: a newer peer's new type says so. */
    {
        rf_msg m, d;
        uint8_t *buf = NULL, *mod = NULL, *mod2 = NULL;
        size_t len = 0, mod_len = 0, mod2_len = 0;
        make_msg(RF_MSG_ACK, &m);
        encode_ok(&m, &buf, &len);
        v = (val){.k = V_UINT, .u = 2};
        rewrite(buf, len, "v", &v, &mod, &mod_len);
        v = (val){.k = V_STR, .s = "segment", .n = 7};
        rewrite(mod, mod_len, "type", &v, &mod2, &mod2_len);
        assert_int_equal(rf_msg_decode(mod2, mod2_len, &d, err, sizeof(err)), RF_EVERSION);
        free(buf);
        free(mod);
        free(mod2);
    }
}

static void
test_unknown_keys_and_order(void **state)
{
    rf_msg m, d;
    uint8_t *buf = NULL, *m1 = NULL, *m2 = NULL;
    size_t len = 0, l1 = 0, l2 = 0;
    char err[256];
    val v;

    make_msg(RF_MSG_HELLO, &m);
    encode_ok(&m, &buf, &len);
    v = (val){.k = V_STR_ARRAY, .s = "future", .n = 3};
    rewrite(buf, len, "x_future_list", &v, &m1, &l1);
    v = (val){.k = V_F64, .d = 3.5};
    rewrite(m1, l1, "x_future_num", &v, &m2, &l2);
    assert_int_equal(rf_msg_decode(m2, l2, &d, err, sizeof(err)), RF_OK);
    assert_msg_eq(&m, &d);
    free(m1);
    free(m2);

    /* Moving "v" and "type" to the end changes nothing. */
    v = (val){.k = V_UINT, .u = 1};
    rewrite(buf, len, "v", &v, &m1, &l1);
    v = (val){.k = V_STR, .s = "hello", .n = 5};
    rewrite(m1, l1, "type", &v, &m2, &l2);
    assert_true(m2[1] != 0xa1); /* first key is no longer "v" */
    assert_int_equal(rf_msg_decode(m2, l2, &d, err, sizeof(err)), RF_OK);
    assert_msg_eq(&m, &d);
    free(m1);
    free(m2);
    free(buf);
}

static void
test_structural_garbage(void **state)
{
    rf_msg m, d;
    uint8_t *buf = NULL, *big = NULL;
    size_t len = 0;
    char err[256];

    make_msg(RF_MSG_PROGRESS, &m);
    encode_ok(&m, &buf, &len);

    /* Trailing bytes: one junk byte, or a second whole message. */
    big = malloc(len * 2);
    assert_non_null(big);
    memcpy(big, buf, len);
    big[len] = 0x00;
    assert_int_equal(rf_msg_decode(big, len + 1, &d, err, sizeof(err)), RF_EPROTO);
    assert_non_null(strstr(err, "trailing"));
    memcpy(big + len, buf, len);
    assert_int_equal(rf_msg_decode(big, len * 2, &d, err, sizeof(err)), RF_EPROTO);
    free(big);

    /* Top level must be a map. */
    const uint8_t arr[] = {0x92, 0x01, 0x02};
    assert_int_equal(rf_msg_decode(arr, sizeof(arr), &d, err, sizeof(err)), RF_EPROTO);
    const uint8_t str[] = {0xa1, 'v'};
    assert_int_equal(rf_msg_decode(str, sizeof(str), &d, err, sizeof(err)), RF_EPROTO);
    const uint8_t empty_map[] = {0x80};
    assert_int_equal(rf_msg_decode(empty_map, 1, &d, err, sizeof(err)), RF_EPROTO);
    /* Reserved byte 0xc1 as a value. */
    const uint8_t reserved[] = {0x81, 0xa1, 'v', 0xc1};
    assert_int_equal(rf_msg_decode(reserved, sizeof(reserved), &d, err, sizeof(err)), RF_EPROTO);
    /* Non-string key. */
    const uint8_t intkey[] = {0x83, 0xa1, 'v', 0x01, 0xa4, 't',  'y', 'p',
                              'e',  0xa3, 'a', 'c',  'k',  0x05, 0x06};
    assert_int_equal(rf_msg_decode(intkey, sizeof(intkey), &d, err, sizeof(err)), RF_EPROTO);
    /* Duplicate key. */
    const uint8_t dup[] = {0x84, 0xa1, 'v', 0x01, 0xa4, 't', 'y',  'p',  'e', 0xa7,
                           'n',  'o',  '_', 'w',  'o',  'r', 'k',  0xa8, 'r', 'e',
                           't',  'r',  'y', '_',  'm',  's', 0x05, 0xa1, 'v', 0x01};
    assert_int_equal(rf_msg_decode(dup, sizeof(dup), &d, err, sizeof(err)), RF_EPROTO);
    assert_non_null(strstr(err, "duplicate"));
    /* The same without the duplicate is fine (guards the test itself). */
    uint8_t nodup[sizeof(dup) - 3];
    memcpy(nodup, dup, sizeof(nodup));
    nodup[0] = 0x83;
    assert_int_equal(rf_msg_decode(nodup, sizeof(nodup), &d, err, sizeof(err)), RF_OK);
    assert_int_equal(d.u.no_work.retry_ms, 5);

    /* Empty strings as keys and values (found by fuzzing: msgpack-c may
     * give them a NULL pointer, which memcmp/memchr must not see). */
    const uint8_t empty_dup[] = {0x83, 0xa0, 0x00, 0xa0, 0x00, 0xa1, 'v', 0x01};
    assert_int_equal(rf_msg_decode(empty_dup, sizeof(empty_dup), &d, err, sizeof(err)), RF_EPROTO);
    assert_non_null(strstr(err, "duplicate"));
    const uint8_t empty_type[] = {0x83, 0xa0, 0x00, 0xa1, 'v', 0x01,
                                  0xa4, 't',  'y',  'p',  'e', 0xa0};
    assert_int_equal(rf_msg_decode(empty_type, sizeof(empty_type), &d, err, sizeof(err)),
                     RF_EPROTO);
    assert_non_null(strstr(err, "unknown message type"));
    {
        /* An empty unknown key is ignored; an empty string value is copied. */
        val v = {.k = V_STR, .s = "", .n = 0};
        assert_int_equal(decode_modified(RF_MSG_ACK, "", &v, err, sizeof(err)), RF_OK);
        assert_int_equal(decode_modified(RF_MSG_FAIL, "error_message", &v, err, sizeof(err)),
                         RF_OK);
    }

    /* Arguments. */
    assert_int_equal(rf_msg_decode(NULL, 0, &d, err, sizeof(err)), RF_EPROTO);
    assert_int_equal(rf_msg_decode(buf, len, NULL, err, sizeof(err)), RF_EINVAL);
    assert_int_equal(rf_msg_decode(buf, len, &d, NULL, 0), RF_OK);
    rf_msg_clear(&m);
    free(buf);
}

static void
test_deep_nesting(void **state)
{
    rf_msg d;
    char err[256];
    val v;
    enum { DEPTH = 100000 };
    uint8_t *p;

    /* Nesting one level deeper than the schema (array in array) is refused
     * even under an unknown key. */
    v = (val){.k = V_ARRAY_NESTED};
    assert_int_equal(decode_modified(RF_MSG_ACK, "x_nested", &v, err, sizeof(err)), RF_EPROTO);
    assert_non_null(strstr(err, "deep"));
    v = (val){.k = V_ARRAY_INT};
    assert_int_equal(decode_modified(RF_MSG_ACK, "x_flat", &v, err, sizeof(err)), RF_OK);

    /* 100k nested arrays / maps must not recurse 100k deep. */
    p = malloc(DEPTH + 1);
    assert_non_null(p);
    p[0] = 0x81;
    p[1] = 0xa1;
    p[2] = 'x';
    memset(p + 3, 0x91, DEPTH - 4);
    p[DEPTH - 1] = 0x01;
    assert_int_equal(rf_msg_decode(p, DEPTH, &d, err, sizeof(err)), RF_EPROTO);
    memset(p, 0x81, DEPTH);
    assert_int_equal(rf_msg_decode(p, DEPTH, &d, err, sizeof(err)), RF_EPROTO);
    free(p);
}

static void
test_huge_declared_lengths(void **state)
{
    rf_msg d;
    char err[256];
    /* Each declares far more than is present; msgpack-c would allocate for
     * the declared count (e.g. 2^32 * 24 bytes) before noticing. */
    const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'v', 0x01};
    const uint8_t arr32[] = {0x82, 0xa1, 'v', 0x01, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff};
    const uint8_t map16_in[] = {0x82, 0xa1, 'v', 0x01, 0xa1, 'x', 0xde, 0xff, 0xff, 0x01, 0x02};
    const uint8_t str32[] = {0x81, 0xa1, 'x', 0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'};
    const uint8_t bin32[] = {0x81, 0xa1, 'x', 0xc6, 0xff, 0xff, 0xff, 0xff, 'a'};
    const uint8_t ext32[] = {0x81, 0xa1, 'x', 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 'a'};
    const struct {
        const uint8_t *p;
        size_t n;
    } cases[] = {{map32, sizeof(map32)}, {arr32, sizeof(arr32)}, {map16_in, sizeof(map16_in)},
                 {str32, sizeof(str32)}, {bin32, sizeof(bin32)}, {ext32, sizeof(ext32)}};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(rf_msg_decode(cases[i].p, cases[i].n, &d, err, sizeof(err)), RF_EPROTO);
        assert_non_null(strstr(err, "truncated"));
    }
}

static void
test_message_size_limit(void **state)
{
    rf_msg m, d;
    uint8_t *buf = NULL, *mod = NULL;
    size_t len = 0, mod_len = 0, pad;
    char err[256];
    val v;

    /* Pad a valid ack with an unknown bin field to exactly the limit: fine.
     * One byte more: refused before parsing. */
    make_msg(RF_MSG_ACK, &m);
    encode_ok(&m, &buf, &len);
    v = (val){.k = V_BIN, .n = 16};
    rewrite(buf, len, "x_pad", &v, &mod, &mod_len);
    pad = RF_MSG_MAX_BYTES - (mod_len - 16) - 3; /* bin 32 header is 5, bin 8 is 2 */
    free(mod);
    v = (val){.k = V_BIN, .n = pad};
    rewrite(buf, len, "x_pad", &v, &mod, &mod_len);
    assert_int_equal(mod_len, RF_MSG_MAX_BYTES);
    assert_int_equal(rf_msg_decode(mod, mod_len, &d, err, sizeof(err)), RF_OK);
    assert_int_equal(d.u.ack.lease_expires_ms, m.u.ack.lease_expires_ms);
    free(mod);
    v = (val){.k = V_BIN, .n = pad + 1};
    rewrite(buf, len, "x_pad", &v, &mod, &mod_len);
    assert_int_equal(mod_len, RF_MSG_MAX_BYTES + 1);
    assert_int_equal(rf_msg_decode(mod, mod_len, &d, err, sizeof(err)), RF_ETOOBIG);
    assert_int_equal(d.type, RF_MSG_NONE);
    free(mod);
    free(buf);
}

static void
test_clear_and_copy(void **state)
{
    rf_msg m, c;

    rf_msg_clear(NULL);
    make_msg(RF_MSG_UNIT, &m);
    memset(&c, 0, sizeof(c));
    c.type = RF_MSG_UNIT;
    assert_int_equal(rf_unit_copy(&c.u.unit, &m.u.unit), RF_OK);
    assert_ptr_not_equal(c.u.unit.title, m.u.unit.title);
    assert_ptr_not_equal(c.u.unit.script, m.u.unit.script);
    assert_msg_eq(&m, &c);
    /* Independent: changing the copy leaves the source alone. */
    c.u.unit.script[0] = 'X';
    c.u.unit.width = 640;
    assert_int_equal(m.u.unit.script[0], 'W');
    assert_int_equal(m.u.unit.width, 1080);
    rf_msg_clear(&m);
    assert_int_equal(m.type, RF_MSG_NONE);
    assert_null(m.u.unit.title);
    rf_msg_clear(&m); /* idempotent */
    rf_msg_clear(&c);

    /* NULL heap strings copy as NULL. */
    rf_unit a, b;
    memset(&a, 0, sizeof(a));
    strcpy(a.unit_id, "u");
    assert_int_equal(rf_unit_copy(&b, &a), RF_OK);
    assert_null(b.title);
    assert_string_equal(b.unit_id, "u");
    assert_int_equal(rf_unit_copy(NULL, &a), RF_EINVAL);
}

/* ---- random input, fixed seed ---- */

static uint64_t
prng(uint64_t *s)
{
    /* xorshift64*: deterministic, so a failure reproduces. */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* A decode that succeeds must describe a message we can send back
 * unchanged: encode, decode again, compare. */
static void
check_any(const uint8_t *p, size_t n, int *n_ok)
{
    rf_msg d, d2;
    char err[256];
    uint8_t *buf = NULL;
    size_t len = 0;
    rf_err rv = rf_msg_decode(p, n, &d, err, sizeof(err));

    if (rv != RF_OK) {
        assert_true(rv == RF_EPROTO || rv == RF_ETOOBIG || rv == RF_EVERSION);
        assert_int_equal(d.type, RF_MSG_NONE);
        return;
    }
    (*n_ok)++;
    encode_ok(&d, &buf, &len);
    assert_int_equal(rf_msg_decode(buf, len, &d2, err, sizeof(err)), RF_OK);
    assert_msg_eq(&d, &d2);
    rf_msg_clear(&d);
    rf_msg_clear(&d2);
    free(buf);
}

static void
test_random_bytes(void **state)
{
    uint64_t seed = 0x5eed1234abcdULL;
    uint8_t buf[512];
    int n_ok = 0;

    for (int i = 0; i < 20000; i++) {
        size_t n = 1 + prng(&seed) % sizeof(buf);
        for (size_t j = 0; j < n; j++) {
            buf[j] = (uint8_t)prng(&seed);
        }
        /* Half start as a map so the walk goes deeper than byte one. */
        if (i % 2 == 0) {
            buf[0] = 0x80 | (buf[0] & 0x0f);
        }
        check_any(buf, n, &n_ok);
    }
    /* Random bytes essentially never form a valid message. */
    assert_int_equal(n_ok, 0);
}

static void
test_random_mutations(void **state)
{
    static const uint8_t interesting[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0xa0, 0xc0,
                                          0xc1, 0xc2, 0xca, 0xcb, 0xcf, 0xd3, 0xd9,
                                          0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff};
    uint64_t seed = 0xfeedbeef42ULL;
    uint8_t *enc[N_TYPES];
    size_t enc_len[N_TYPES];
    uint8_t *buf;
    int n_ok = 0;

    for (size_t t = 0; t < N_TYPES; t++) {
        rf_msg m;
        make_msg(all_types[t], &m);
        encode_ok(&m, &enc[t], &enc_len[t]);
        rf_msg_clear(&m);
    }
    buf = malloc(enc_len[3] * 2 + 64);
    assert_non_null(buf);
    for (int i = 0; i < 20000; i++) {
        size_t t = prng(&seed) % N_TYPES;
        size_t n = enc_len[t];
        int n_mut = 1 + (int)(prng(&seed) % 4);

        memcpy(buf, enc[t], n);
        for (int k = 0; k < n_mut && n > 0; k++) {
            size_t at = prng(&seed) % n;
            switch (prng(&seed) % 6) {
            case 0:
                buf[at] ^= (uint8_t)(1u << (prng(&seed) % 8));
                break;
            case 1:
                buf[at] = (uint8_t)prng(&seed);
                break;
            case 2:
                buf[at] = interesting[prng(&seed) % sizeof(interesting)];
                break;
            case 3:
                n = at + 1; /* truncate */
                break;
            case 4:
                if (n < enc_len[3] * 2 + 32) { /* insert a byte */
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = (uint8_t)prng(&seed);
                    n++;
                }
                break;
            case 5: /* delete a byte */
                memmove(buf + at, buf + at + 1, n - at - 1);
                n--;
                break;
            }
        }
        check_any(buf, n, &n_ok);
    }
    /* Some single-bit flips inside string bodies stay valid: the check
     * above then exercised re-encoding, which is the point. */
    assert_true(n_ok > 0);
    free(buf);
    for (size_t t = 0; t < N_TYPES; t++) {
        free(enc[t]);
    }
}

/* ---- golden / seed writer ---- */

static int
write_bytes(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");

    if (f == NULL) {
        perror(path);
        return 1;
    }
    if (fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        return 1;
    }
    printf("wrote %s (%zu bytes)\n", path, n);
    return 0;
}

static int
write_golden(const char *data_dir, const char *corpus_dir)
{
    char path[1024];
    int bad = 0;

    for (size_t t = 0; t < N_TYPES; t++) {
        rf_msg m;
        uint8_t *buf = NULL;
        size_t len = 0;

        make_msg(all_types[t], &m);
        if (rf_msg_encode(&m, &buf, &len) != RF_OK) {
            fprintf(stderr, "encode %s failed\n", rf_msg_type_name(all_types[t]));
            return 1;
        }
        if (all_types[t] == RF_MSG_UNIT) {
            snprintf(path, sizeof(path), "%s/unit_v1.msgpack", data_dir);
            bad |= write_bytes(path, buf, len);
        }
        snprintf(path, sizeof(path), "%s/%s.msgpack", corpus_dir, rf_msg_type_name(all_types[t]));
        bad |= write_bytes(path, buf, len);
        rf_msg_clear(&m);
        free(buf);
    }
    return bad;
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_roundtrip_all_types),
        cmocka_unit_test(test_golden_unit),
        cmocka_unit_test(test_truncated_prefixes),
        cmocka_unit_test(test_missing_fields),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_number_coercions),
        cmocka_unit_test(test_ranges_on_decode),
        cmocka_unit_test(test_string_limits),
        cmocka_unit_test(test_encode_validates),
        cmocka_unit_test(test_version_and_type),
        cmocka_unit_test(test_unknown_keys_and_order),
        cmocka_unit_test(test_structural_garbage),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_huge_declared_lengths),
        cmocka_unit_test(test_message_size_limit),
        cmocka_unit_test(test_clear_and_copy),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_random_mutations),
    };

    if (argc == 4 && strcmp(argv[1], "--write-golden") == 0) {
        return write_golden(argv[2], argv[3]);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
