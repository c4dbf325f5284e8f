/* The libav encoder and muxer (agent/encoder.c), checked with the real
 * ffprobe and ffmpeg binaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <libavcodec/avcodec.h>
#include <libavutil/log.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "encoder.h"
#include "rf_log.h"

static char tmpdir[64];

/* Runs cmd (its stderr folded into stdout), returns its exit status and
 * stores up to cap-1 bytes of output in out. */
static int
run(const char *cmd, char *out, size_t cap)
{
    char full[2048];
    snprintf(full, sizeof(full), "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    assert_non_null(p);
    size_t n = 0, r;
    char sink[4096];
    while ((r = fread(n + 1 < cap ? out + n : sink, 1, n + 1 < cap ? cap - 1 - n : sizeof(sink),
                      p)) > 0)
        if (n + 1 < cap)
            n += r;
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
path_for(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmpdir, name);
}

/* A picture that changes with i: a moving luma ramp and a chroma tint. */
static void
draw(const rf_frame *f, int i)
{
    for (int y = 0; y < f->height; y++)
        for (int x = 0; x < f->width; x++)
            f->data[0][y * f->linesize[0] + x] = (uint8_t)(16 + (x + y + 4 * i) % 219);
    for (int y = 0; y < f->height / 2; y++)
        for (int x = 0; x < f->width / 2; x++) {
            f->data[1][y * f->linesize[1] + x] = (uint8_t)(128 + ((x / 8 + i) % 32) - 16);
            f->data[2][y * f->linesize[2] + x] = (uint8_t)(128 + ((y / 8) % 32) - 16);
        }
}

static rf_enc_config
config(const char *path, const char *container, const char *vc, const char *ac, int w, int h)
{
    return (rf_enc_config){.path = path,
                           .container = container,
                           .video_codec = vc,
                           .audio_codec = ac,
                           .preset = "veryfast",
                           .width = w,
                           .height = h,
                           .fps = 30,
                           .gop_frames = 60,
                           .crf = 0,
                           .sample_rate = 48000,
                           .channels = 2};
}

/* The video encoder that wrote the last file of encode_as and its note. */
static char last_encoder[RF_NAME_MAX];
static char last_note[RF_ERRMSG_MAX];

/* Encodes frames pictures (redrawn each time if animate) with a 440 Hz tone
 * fed alongside, one video frame's worth of audio at a time. */
static void
encode(const rf_enc_config *cfg, int frames, bool animate)
{
    rf_encoder *e = NULL;
    char err[256] = "";
    rf_err rv = rf_enc_open(cfg, &e, err, sizeof(err));
    if (rv != RF_OK)
        fail_msg("rf_enc_open: %s (%s)", rf_strerror(rv), err);
    snprintf(last_encoder, sizeof(last_encoder), "%s", rf_enc_video_name(e));
    snprintf(last_note, sizeof(last_note), "%s", rf_enc_note(e));
    assert_false(rf_enc_device_frames(e)); /* no CUDA frames asked for */
    const size_t per = (size_t)(cfg->sample_rate / cfg->fps);
    float *pcm = malloc(per * 2 * sizeof(float));
    assert_non_null(pcm);
    size_t t = 0;
    for (int i = 0; i < frames; i++) {
        rf_frame f;
        assert_int_equal(rf_enc_frame(e, &f), RF_OK);
        assert_int_equal(f.fmt, RF_PIX_YUV420P);
        assert_int_equal(f.width, cfg->width);
        if (animate || i == 0)
            draw(&f, i);
        assert_int_equal(rf_enc_submit(e), RF_OK);
        for (size_t k = 0; k < per; k++, t++) {
            float s = 0.25f * (float)sin(2.0 * M_PI * 440.0 * (double)t / cfg->sample_rate);
            pcm[2 * k] = s;
            pcm[2 * k + 1] = s;
        }
        assert_int_equal(rf_enc_audio(e, pcm, per), RF_OK);
    }
    free(pcm);
    rv = rf_enc_finish(e, err, sizeof(err));
    if (rv != RF_OK)
        fail_msg("rf_enc_finish: %s (%s)", rf_strerror(rv), err);
    assert_int_equal(rf_enc_finish(e, err, sizeof(err)), RF_EINVAL); /* only once */
    rf_enc_free(&e);
    assert_null(e);
}

static json_t *
probe_streams(const char *path)
{
    static char out[1 << 16];
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "ffprobe -v error -of json -show_streams -show_format '%s'", path);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    json_error_t jerr;
    json_t *j = json_loads(out, 0, &jerr);
    if (j == NULL)
        fail_msg("ffprobe output is not JSON: %s", jerr.text);
    return j;
}

static json_t *
stream_of(json_t *j, const char *type)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(j, "streams"), i, s)
    {
        if (strcmp(json_string_value(json_object_get(s, "codec_type")), type) == 0)
            return s;
    }
    fail_msg("no %s stream", type);
    return NULL;
}

static const char *
str(json_t *s, const char *key)
{
    const char *v = json_string_value(json_object_get(s, key));
    if (v == NULL)
        fail_msg("ffprobe: no %s", key);
    return v;
}

static double
num(json_t *s, const char *key)
{
    return strtod(str(s, key), NULL);
}

/* ffmpeg decodes the whole file without a single complaint. */
static void
assert_decodes_cleanly(const char *path)
{
    char out[4096], cmd[1024];
    snprintf(cmd, sizeof(cmd), "ffmpeg -nostdin -v error -i '%s' -f null -", path);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    if (out[0] != '\0')
        fail_msg("ffmpeg reported: %s", out);
}

/* Top-level MP4 boxes: moov must come before mdat (faststart). */
static void
assert_moov_first(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    long moov = -1, mdat = -1, pos = 0;
    for (int guard = 0; guard < 64; guard++) {
        uint8_t h[16];
        if (fread(h, 1, 8, f) != 8)
            break;
        uint64_t size = (uint64_t)h[0] << 24 | (uint64_t)h[1] << 16 | (uint64_t)h[2] << 8 | h[3];
        size_t hdr = 8;
        if (size == 1) {
            assert_int_equal(fread(h + 8, 1, 8, f), 8);
            size = 0;
            for (int i = 8; i < 16; i++)
                size = size << 8 | h[i];
            hdr = 16;
        }
        if (memcmp(h + 4, "moov", 4) == 0 && moov < 0)
            moov = pos;
        if (memcmp(h + 4, "mdat", 4) == 0 && mdat < 0)
            mdat = pos;
        if (size == 0)
            break; /* box runs to the end of the file */
        assert_true(size >= hdr);
        pos += (long)size;
        assert_int_equal(fseek(f, pos, SEEK_SET), 0);
    }
    fclose(f);
    assert_true(moov >= 0 && mdat >= 0);
    assert_true(moov < mdat);
}

static void
test_mp4_h264_aac(void **state)
{
    (void)state;
    char path[128];
    path_for(path, sizeof(path), "h264.mp4");
    rf_enc_config cfg = config(path, "mp4", "h264", "aac", 640, 360);
    encode(&cfg, 90, true);

    json_t *j = probe_streams(path);
    json_t *v = stream_of(j, "video"), *a = stream_of(j, "audio");
    assert_string_equal(str(v, "codec_name"), "h264");
    assert_string_equal(str(v, "profile"), "High");
    assert_string_equal(str(v, "pix_fmt"), "yuv420p");
    assert_string_equal(str(v, "color_space"), "bt709");
    assert_string_equal(str(v, "color_transfer"), "bt709");
    assert_string_equal(str(v, "color_primaries"), "bt709");
    assert_string_equal(str(v, "color_range"), "tv");
    assert_string_equal(str(v, "r_frame_rate"), "30/1");
    assert_string_equal(str(v, "avg_frame_rate"), "30/1");
    assert_int_equal(json_integer_value(json_object_get(v, "width")), 640);
    assert_int_equal(json_integer_value(json_object_get(v, "height")), 360);
    assert_string_equal(str(a, "codec_name"), "aac");
    assert_string_equal(str(a, "profile"), "LC");
    assert_string_equal(str(a, "sample_rate"), "48000");
    assert_int_equal(json_integer_value(json_object_get(a, "channels")), 2);
    print_message("durations: video %s, audio %s\n", str(v, "duration"), str(a, "duration"));
    assert_true(fabs(num(v, "duration") - 3.0) <= 0.034);
    assert_true(fabs(num(a, "duration") - 3.0) <= 0.034);
    assert_int_equal(strtol(str(v, "nb_frames"), NULL, 10), 90);
    json_decref(j);

    /* Keyframes: one at the start, then at most 2 s apart. */
    static char out[1 << 16];
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "ffprobe -v error -select_streams v:0 -show_entries packet=pts_time,flags "
             "-of csv=p=0 '%s'",
             path);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    double last_key = -1.0, max_gap = 0.0;
    int keys = 0, packets = 0;
    for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        double t;
        char flags[16];
        if (sscanf(line, "%lf,%15s", &t, flags) != 2)
            continue;
        packets++;
        if (strchr(flags, 'K') == NULL)
            continue;
        if (keys == 0)
            assert_true(t < 0.001);
        else if (t - last_key > max_gap)
            max_gap = t - last_key;
        last_key = t;
        keys++;
    }
    assert_int_equal(packets, 90);
    assert_true(keys >= 2);
    assert_true(max_gap <= 2.0 + 1e-6);
    assert_true(3.0 - last_key <= 2.0 + 1e-6);

    assert_moov_first(path);
    assert_decodes_cleanly(path);
}

static void
skip_without(const char *encoder)
{
    if (avcodec_find_encoder_by_name(encoder) == NULL) {
        print_message("%s is not in this libavcodec build\n", encoder);
        skip();
    }
}

static void
test_webm_vp9_opus(void **state)
{
    (void)state;
    skip_without("libvpx-vp9");
    skip_without("libopus");
    char path[128];
    path_for(path, sizeof(path), "vp9.webm");
    rf_enc_config cfg = config(path, "webm", "vp9", "opus", 320, 180);
    encode(&cfg, 45, true);
    json_t *j = probe_streams(path);
    assert_string_equal(str(stream_of(j, "video"), "codec_name"), "vp9");
    assert_string_equal(str(stream_of(j, "audio"), "codec_name"), "opus");
    json_t *fmt = json_object_get(j, "format");
    assert_true(fabs(num(fmt, "duration") - 1.5) <= 0.05);
    json_decref(j);
    assert_decodes_cleanly(path);
}

static void
test_mp4_h265(void **state)
{
    (void)state;
    skip_without("libx265");
    char path[128];
    path_for(path, sizeof(path), "h265.mp4");
    rf_enc_config cfg = config(path, "mp4", "h265", "aac", 320, 180);
    encode(&cfg, 45, true);
    json_t *j = probe_streams(path);
    json_t *v = stream_of(j, "video");
    assert_string_equal(str(v, "codec_name"), "hevc");
    assert_string_equal(str(v, "codec_tag_string"), "hvc1");
    assert_string_equal(str(v, "color_primaries"), "bt709");
    json_decref(j);
    assert_moov_first(path);
    assert_decodes_cleanly(path);
}

static void
test_refusals(void **state)
{
    (void)state;
    char path[128], err[256];
    rf_encoder *e = NULL;
    path_for(path, sizeof(path), "refused.webm");
    rf_enc_config cfg = config(path, "webm", "h264", "opus", 320, 180);
    assert_int_equal(rf_enc_open(&cfg, &e, err, sizeof(err)), RF_EINVAL);
    assert_null(e);
    assert_non_null(strstr(err, "webm"));
    assert_int_equal(access(path, F_OK), -1); /* nothing written */
    cfg = config(path, "webm", "vp9", "aac", 320, 180);
    assert_int_equal(rf_enc_open(&cfg, &e, err, sizeof(err)), RF_EINVAL);
    cfg = config(path, "mov", "h264", "opus", 320, 180);
    assert_int_equal(rf_enc_open(&cfg, &e, err, sizeof(err)), RF_EINVAL);
    assert_non_null(strstr(err, "opus"));
    cfg = config(path, "avi", "h264", "aac", 320, 180);
    assert_int_equal(rf_enc_open(&cfg, &e, err, sizeof(err)), RF_EINVAL);
    assert_non_null(strstr(err, "avi"));
    cfg = config(path, "mp4", "h264", "aac", 321, 180); /* odd width */
    assert_int_equal(rf_enc_open(&cfg, &e, err, sizeof(err)), RF_EINVAL);
    cfg = config("/nonexistent-dir/x.mp4", "mp4", "h264", "aac", 320, 180);
    assert_int_equal(rf_enc_open(&cfg, &e, err, sizeof(err)), RF_EIO);
    assert_non_null(strstr(err, "/nonexistent-dir/x.mp4"));
    assert_null(e);
    rf_enc_free(&e);
    rf_enc_free(NULL);
}

/* One picture drawn once and submitted 60 times: the frame keeps its
 * contents between submits, so the last decoded frame is still that picture. */
static void
test_frame_reuse(void **state)
{
    (void)state;
    char path[128];
    path_for(path, sizeof(path), "reuse.mov");
    rf_enc_config cfg = config(path, "mov", "h264", "aac", 320, 180);
    cfg.crf = 10;
    encode(&cfg, 60, false);
    assert_decodes_cleanly(path);

    const size_t ysize = 320 * 180;
    uint8_t *y = malloc(ysize * 3 / 2);
    assert_non_null(y);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "ffmpeg -nostdin -v error -i '%s' -vf 'select=eq(n\\,59)' -vsync 0 -frames:v 1 "
             "-f rawvideo -pix_fmt yuv420p -",
             path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t got = fread(y, 1, ysize * 3 / 2, p);
    assert_int_equal(pclose(p), 0);
    assert_int_equal(got, ysize * 3 / 2);
    rf_frame ref = {.fmt = RF_PIX_YUV420P, .width = 320, .height = 180};
    uint8_t *buf = malloc(ysize * 3 / 2);
    assert_non_null(buf);
    ref.data[0] = buf;
    ref.data[1] = buf + ysize;
    ref.data[2] = buf + ysize + ysize / 4;
    ref.linesize[0] = 320;
    ref.linesize[1] = ref.linesize[2] = 160;
    draw(&ref, 0);
    double diff = 0;
    for (size_t i = 0; i < ysize; i++)
        diff += fabs((double)y[i] - (double)buf[i]);
    diff /= (double)ysize;
    print_message("mean |decoded - drawn| on frame 59: %.2f\n", diff);
    assert_true(diff < 2.0);
    free(buf);
    free(y);
}

/* Fails unless the last note holds want. */
static void
assert_note_has(const char *want)
{
    if (strstr(last_note, want) == NULL)
        fail_msg("note \"%s\" lacks \"%s\"", last_note, want);
}

/* Asking for codec on this host (no GPU, no VAAPI node at `node`) ends in
 * the software encoder, and the note says why NVENC (where NVENC has the
 * codec) and VAAPI were passed over. The file is checked with ffprobe. */
static void
check_falls_back(const char *codec, const char *container, const char *audio, const char *nvenc,
                 const char *vaapi, const char *soft, const char *probe_name, bool listed)
{
    char path[128], want[256];
    snprintf(path, sizeof(path), "%s/fallback-%s.%s", tmpdir, codec, container);
    const char list[][RF_NAME_MAX] = {"h264_nvenc", "hevc_nvenc", "h264_vaapi", "hevc_vaapi",
                                      "vp9_vaapi",  "libx264",    "libx265",    "libvpx-vp9",
                                      "aac",        "libopus"};
    rf_enc_host *host = NULL;
    assert_int_equal(rf_enc_host_create("/nonexistent/renderD128", 2, &host), RF_OK);
    rf_enc_config cfg = config(path, container, codec, audio, 320, 180);
    cfg.host = host;
    if (listed) {
        cfg.available = list;
        cfg.n_available = (int)(sizeof(list) / sizeof(list[0]));
    }
    encode(&cfg, 15, true);
    assert_string_equal(last_encoder, soft);
    if (nvenc != NULL) {
        snprintf(want, sizeof(want), "%s: does not open", nvenc);
        assert_note_has(want);
    }
    snprintf(want, sizeof(want), "%s: no VAAPI render node /nonexistent/renderD128", vaapi);
    assert_note_has(want);
    /* Each fallback named once, hardware in preference order. */
    if (nvenc != NULL)
        assert_true(strstr(last_note, nvenc) < strstr(last_note, vaapi));
    assert_int_equal(rf_enc_host_nvenc_in_use(host), 0); /* a failed NVENC gave its session back */
    rf_enc_host_free(&host);
    assert_null(host);

    json_t *j = probe_streams(path);
    assert_string_equal(str(stream_of(j, "video"), "codec_name"), probe_name);
    json_decref(j);
    assert_decodes_cleanly(path);
}

static void
test_fallback_h264(void **state)
{
    (void)state;
    check_falls_back("h264", "mp4", "aac", "h264_nvenc", "h264_vaapi", "libx264", "h264", true);
    check_falls_back("h264", "mp4", "aac", "h264_nvenc", "h264_vaapi", "libx264", "h264", false);
}

static void
test_fallback_h265(void **state)
{
    (void)state;
    skip_without("libx265");
    check_falls_back("h265", "mp4", "aac", "hevc_nvenc", "hevc_vaapi", "libx265", "hevc", true);
    check_falls_back("h265", "mp4", "aac", "hevc_nvenc", "hevc_vaapi", "libx265", "hevc", false);
}

static void
test_fallback_vp9(void **state)
{
    (void)state;
    skip_without("libvpx-vp9");
    skip_without("libopus");
    /* NVENC has no VP9 encoder: VAAPI is the only hardware to pass over. */
    check_falls_back("vp9", "webm", "opus", NULL, "vp9_vaapi", "libvpx-vp9", "vp9", true);
    check_falls_back("vp9", "webm", "opus", NULL, "vp9_vaapi", "libvpx-vp9", "vp9", false);
}

/* The default node, as an agent without --vaapi-device uses it. Where the
 * host has one that works, VAAPI may rightly win: nothing to check then. */
static void
test_fallback_default_node(void **state)
{
    (void)state;
    if (access(RF_VAAPI_NODE_DEFAULT, F_OK) == 0) {
        print_message("%s exists on this host: skipping\n", RF_VAAPI_NODE_DEFAULT);
        skip();
    }
    char path[128];
    path_for(path, sizeof(path), "default-node.mp4");
    rf_enc_config cfg = config(path, "mp4", "h264", "aac", 320, 180);
    encode(&cfg, 10, true);
    assert_string_equal(last_encoder, "libx264");
    assert_note_has("h264_nvenc: ");
    assert_note_has("h264_vaapi: no VAAPI render node " RF_VAAPI_NODE_DEFAULT);
}

/* A node that exists but is no GPU: the driver does not open, said so. */
static void
test_vaapi_driver_does_not_open(void **state)
{
    (void)state;
    char path[128];
    path_for(path, sizeof(path), "not-a-gpu.mp4");
    rf_enc_host *host = NULL;
    assert_int_equal(rf_enc_host_create("/dev/null", 1, &host), RF_OK);
    rf_enc_config cfg = config(path, "mp4", "h264", "aac", 320, 180);
    cfg.host = host;
    encode(&cfg, 10, true);
    assert_string_equal(last_encoder, "libx264");
    assert_note_has("h264_vaapi: VAAPI driver does not open on /dev/null");
    rf_enc_host_free(&host);
}

/* The NVENC session count: acquire up to the limit, refuse beyond it,
 * release frees one; a limit of 0 refuses at once. */
static void
test_nvenc_session_limit(void **state)
{
    (void)state;
    rf_enc_host *h = NULL;
    int limit = -1;
    assert_int_equal(rf_enc_host_create(NULL, -1, &h), RF_EINVAL);
    assert_null(h);
    assert_int_equal(rf_enc_host_create(NULL, 2, &h), RF_OK);
    assert_true(rf_enc_host_nvenc_acquire(h, &limit));
    assert_true(rf_enc_host_nvenc_acquire(h, NULL));
    assert_int_equal(rf_enc_host_nvenc_in_use(h), 2);
    assert_false(rf_enc_host_nvenc_acquire(h, &limit));
    assert_int_equal(limit, 2);
    assert_int_equal(rf_enc_host_nvenc_in_use(h), 2);
    rf_enc_host_nvenc_release(h);
    assert_int_equal(rf_enc_host_nvenc_in_use(h), 1);
    assert_true(rf_enc_host_nvenc_acquire(h, NULL));
    rf_enc_host_nvenc_release(h);
    rf_enc_host_nvenc_release(h);
    rf_enc_host_nvenc_release(h); /* never below zero */
    assert_int_equal(rf_enc_host_nvenc_in_use(h), 0);
    rf_enc_host_free(&h);

    assert_int_equal(rf_enc_host_create(NULL, 0, &h), RF_OK);
    assert_false(rf_enc_host_nvenc_acquire(h, &limit));
    assert_int_equal(limit, 0);
    rf_enc_host_free(&h);
    rf_enc_host_free(NULL);
}

/* A unit that finds every NVENC session taken (another slot holds it)
 * falls back to software with that reason instead of failing, and leaves
 * the count as it found it. */
static void
test_nvenc_sessions_in_use(void **state)
{
    (void)state;
    char path[128];
    path_for(path, sizeof(path), "sessions.mp4");
    rf_enc_host *h = NULL;
    assert_int_equal(rf_enc_host_create("/nonexistent/renderD128", 1, &h), RF_OK);
    assert_true(rf_enc_host_nvenc_acquire(h, NULL)); /* the other slot's session */
    rf_enc_config cfg = config(path, "mp4", "h264", "aac", 320, 180);
    cfg.host = h;
    encode(&cfg, 10, true);
    assert_string_equal(last_encoder, "libx264");
    assert_note_has("h264_nvenc: all 1 NVENC sessions in use");
    assert_int_equal(rf_enc_host_nvenc_in_use(h), 1);
    rf_enc_host_nvenc_release(h);
    rf_enc_host_free(&h);

    /* A limit of 0 keeps NVENC out altogether, also from the probe. */
    assert_int_equal(rf_enc_host_create("/nonexistent/renderD128", 0, &h), RF_OK);
    cfg.host = h;
    encode(&cfg, 10, true);
    assert_note_has("h264_nvenc: NVENC sessions are limited to 0 on this agent");
    char names[16][RF_NAME_MAX];
    int n = rf_enc_probe(h, names, 16);
    for (int i = 0; i < n; i++)
        assert_null(strstr(names[i], "_nvenc"));
    rf_enc_host_free(&h);
}

/* A backend the start-up probe listed that then fails for a file is not
 * trusted for the next file: that one re-probes it first and says so. */
static void
test_reprobe_after_failure(void **state)
{
    (void)state;
    char path[128];
    path_for(path, sizeof(path), "reprobe.mp4");
    /* The probe's list says VAAPI opens; this host's node does not exist. */
    const char list[][RF_NAME_MAX] = {"h264_vaapi", "libx264", "aac"};
    rf_enc_host *h = NULL;
    assert_int_equal(rf_enc_host_create("/nonexistent/renderD128", 1, &h), RF_OK);
    rf_enc_config cfg = config(path, "mp4", "h264", "aac", 320, 180);
    cfg.host = h;
    cfg.available = list;
    cfg.n_available = 3;
    encode(&cfg, 10, true);
    assert_string_equal(last_encoder, "libx264");
    assert_note_has("h264_nvenc: did not open in the start-up probe");
    assert_note_has("h264_vaapi: no VAAPI render node /nonexistent/renderD128 (re-probed before "
                    "the next file uses it)");
    for (int file = 0; file < 2; file++) {
        encode(&cfg, 10, true);
        assert_string_equal(last_encoder, "libx264");
        assert_note_has("h264_vaapi: failed for an earlier file, and again in a re-probe: no "
                        "VAAPI render node /nonexistent/renderD128");
    }
    rf_enc_host_free(&h);
    /* Without a host there is no memory of failures: each file just tries. */
    cfg.host = NULL;
    encode(&cfg, 10, true);
    assert_note_has("h264_vaapi: no VAAPI render node " RF_VAAPI_NODE_DEFAULT);
    assert_null(strstr(last_note, "re-probe"));
}

/* CUDA frames asked for on a host where NVENC cannot have them: host
 * frames, software encoder, and the note says why the pool was not used. */
static void
test_cuda_frames_fallback(void **state)
{
    (void)state;
    char path[128], err[256];
    path_for(path, sizeof(path), "cuda-frames.mp4");
    rf_enc_config cfg = config(path, "mp4", "h264", "aac", 320, 180);
    cfg.cuda_frames = true;
    rf_encoder *e = NULL;
    assert_int_equal(rf_enc_open(&cfg, &e, err, sizeof(err)), RF_OK);
    if (strcmp(rf_enc_video_name(e), "h264_nvenc") == 0) {
        print_message("NVENC opens here: CUDA frames %s\n",
                      rf_enc_device_frames(e) ? "in use" : "not used");
        rf_enc_free(&e);
        skip();
    }
    assert_false(rf_enc_device_frames(e));
    assert_non_null(strstr(rf_enc_note(e), "h264_nvenc CUDA frames: "));
    rf_frame f;
    assert_int_equal(rf_enc_frame(e, &f), RF_OK);
    draw(&f, 0); /* host memory: drawing into it must work */
    assert_int_equal(rf_enc_submit(e), RF_OK);
    assert_int_equal(rf_enc_finish(e, err, sizeof(err)), RF_OK);
    rf_enc_free(&e);
    assert_decodes_cleanly(path);
}

static void
test_probe(void **state)
{
    (void)state;
    char names[16][RF_NAME_MAX];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int n = rf_enc_probe(NULL, names, 16);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message("probe took %.3f s, %d encoders open\n", s, n);
    bool x264 = false, aac = false;
    for (int i = 0; i < n; i++) {
        x264 |= strcmp(names[i], "libx264") == 0;
        aac |= strcmp(names[i], "aac") == 0;
    }
    assert_true(x264 && aac);
    assert_true(s < 1.0);
    /* max bounds what is written. */
    assert_int_equal(rf_enc_probe(NULL, names, 1), 1);
}

static int
setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/rf_test_encoder_XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
    char out[64];
    if (run("ffprobe -version", out, sizeof(out)) != 0 ||
        run("ffmpeg -version", out, sizeof(out)) != 0) {
        fprintf(stderr, "ffprobe/ffmpeg not found: skipping\n");
        return 77;
    }
    /* libx264 and friends log their banners through av_log. */
    av_log_set_level(AV_LOG_ERROR);
    rf_log_init("test_encoder", RF_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mp4_h264_aac),
        cmocka_unit_test(test_webm_vp9_opus),
        cmocka_unit_test(test_mp4_h265),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_frame_reuse),
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_fallback_h264),
        cmocka_unit_test(test_fallback_h265),
        cmocka_unit_test(test_fallback_vp9),
        cmocka_unit_test(test_fallback_default_node),
        cmocka_unit_test(test_vaapi_driver_does_not_open),
        cmocka_unit_test(test_nvenc_session_limit),
        cmocka_unit_test(test_nvenc_sessions_in_use),
        cmocka_unit_test(test_reprobe_after_failure),
        cmocka_unit_test(test_cuda_frames_fallback),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
