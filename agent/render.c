/* The per-unit pipeline. The expensive, unavoidable part is the video
 * encoder; everything here is arranged so the rest nearly vanishes beside it:
 * text is rasterised once per layer, the background once per unit, and per
 * frame only the rectangles whose layers moved or faded are recomposited,
 * directly into the encoder's own frame (no RGBA frame, no colour conversion
 * per frame). A frame on which nothing changed is submitted as it is. */
#include "render.h"

#include <errno.h>
#include <glob.h>
#include <libgen.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audio.h"
#include "encoder.h"
#include "poster.h"
#include "rf_compose.h"
#include "rf_log.h"
#include "rf_util.h"
#include "scene.h"

#define TARGET_LUFS -14.0
/* Below the -1 dBTP delivery limit: AAC coding can lift peaks a little. */
#define MAX_TRUE_PEAK_DB -1.5
#define MAX_DIRTY 64

static const char *const stage_names[] = {"queued", "audio", "scene", "encode", "finish"};

const char *
rf_render_stage_name(int stage)
{
    if (stage < 0 || stage >= (int)(sizeof(stage_names) / sizeof(stage_names[0])))
        return "unknown";
    return stage_names[stage];
}

static void
fail_with(rf_render_result *res, const char *code, bool retryable, const char *fmt, ...)
{
    va_list ap;

    rf_strlcpy(res->error_code, code, sizeof(res->error_code));
    res->retryable = retryable;
    va_start(ap, fmt);
    vsnprintf(res->error_message, sizeof(res->error_message), fmt, ap);
    va_end(ap);
}

static void
set_stage(rf_render_opts const *o, rf_render_stage st)
{
    if (o && o->progress)
        atomic_store(&o->progress->stage, (int)st);
}

static bool
canceled(rf_render_opts const *o)
{
    return o && o->progress && atomic_load(&o->progress->cancel);
}

/* dst = path with its extension replaced by ext (".jpg"). */
static rf_err
side_path(const char *path, const char *ext, char *dst, size_t len)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    int base =
        dot != NULL && (slash == NULL || dot > slash) ? (int)(dot - path) : (int)strlen(path);
    return rf_fmt(dst, len, "%.*s%s", base, path, ext);
}

static void
copy_planes(rf_frame *dst, const rf_frame *src)
{
    for (int p = 0; p < 3; p++) {
        int w = p ? src->width / 2 : src->width, h = p ? src->height / 2 : src->height;
        for (int y = 0; y < h; y++)
            memcpy(dst->data[p] + (size_t)y * (size_t)dst->linesize[p],
                   src->data[p] + (size_t)y * (size_t)src->linesize[p], (size_t)w);
    }
}

/* Removes ".part-*" files a previous holder of this unit left behind (an
 * agent killed mid-unit), so exactly one output per unit survives. */
static void
remove_stale_parts(const char *final_path)
{
    char pattern[RF_PATH_MAX + 16];
    glob_t g;

    if (rf_fmt(pattern, sizeof(pattern), "%s.part-*", final_path) != RF_OK)
        return;
    if (glob(pattern, GLOB_NOSORT, NULL, &g) != 0)
        return;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        if (unlink(g.gl_pathv[i]) == 0)
            rf_info("removed stale partial output %s", g.gl_pathv[i]);
    }
    globfree(&g);
}

static int64_t
clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Title and end cards: an eighth of the video each, 1.5..3 s, and never more
 * than a quarter of a very short video. */
static int64_t
card_ms(int64_t duration_ms)
{
    int64_t c = clamp64(duration_ms / 8, 1500, 3000);

    if (c > duration_ms / 4)
        c = duration_ms / 4;
    return c;
}

static int64_t
speech_ms(const rf_narration *n)
{
    return (int64_t)n->frames * 1000 / RF_AUDIO_RATE;
}

/* Synthesises the narration and settles the timeline (render.h states the
 * rule). On return *tm and *n are consistent. */
static rf_err
plan_narration(const rf_unit *u, rf_narration *n, rf_timing *tm, rf_render_result *res)
{
    char err[256] = "";
    int64_t duration = u->duration_ms;
    int64_t card = card_ms(duration);
    int64_t avail = duration - 2 * card;
    double speed = u->voice_speed > 0 ? u->voice_speed : 1.0;
    rf_err rv;

    rv = rf_narration_synth(u->script, u->voice, speed, u->voice_pitch, n, err, sizeof(err));
    if (rv != RF_OK) {
        fail_with(res, "audio_generation_failed", false, "narration synthesis failed: %s", err);
        return rv;
    }
    if (speech_ms(n) > avail && avail > 0) {
        double factor = (double)speech_ms(n) / (double)avail * 1.02;
        double faster = speed * (factor < RF_MAX_SPEEDUP ? factor : RF_MAX_SPEEDUP);

        if (faster > 2.0)
            faster = 2.0;
        if (faster > speed) {
            rf_info("unit %s: narration %lld ms exceeds %lld ms, speaking at %.2fx", u->unit_id,
                    (long long)speech_ms(n), (long long)avail, faster / speed);
            rf_narration_free(n);
            rv = rf_narration_synth(u->script, u->voice, faster, u->voice_pitch, n, err,
                                    sizeof(err));
            if (rv != RF_OK) {
                fail_with(res, "audio_generation_failed", false, "narration synthesis failed: %s",
                          err);
                return rv;
            }
        }
    }
    if (speech_ms(n) > avail) {
        int64_t longer = speech_ms(n) + 2 * card;

        rf_warn("unit %s: narration needs %lld ms; video lengthened from %lld to %lld ms",
                u->unit_id, (long long)speech_ms(n), (long long)duration, (long long)longer);
        duration = longer;
    }
    tm->duration_ms = duration;
    tm->title_end_ms = card;
    tm->end_card_ms = duration - card;
    return RF_OK;
}

static rf_rect
state_rect(const rf_layer_state *s, const int *w, const int *h)
{
    rf_rect r = {s->x & ~1, s->y & ~1, w[s->layer], h[s->layer]};
    return r;
}

static const rf_layer_state *
find_state(const rf_layer_state *st, int n, int layer)
{
    for (int i = 0; i < n; i++) {
        if (st[i].layer == layer)
            return &st[i];
    }
    return NULL;
}

static int
add_rect(rf_rect *rects, int n, rf_rect r, rf_rect frame)
{
    rf_rect c;

    if (!rf_rect_intersect(r, frame, &c))
        return n;
    /* Merge with any overlapping rect so no area is composited twice. */
    for (int i = 0; i < n; i++) {
        rf_rect tmp;
        if (rf_rect_intersect(rects[i], c, &tmp)) {
            rf_rect m = rf_rect_union(rects[i], c);
            rects[i] = rects[n - 1];
            return add_rect(rects, n - 1, m, frame);
        }
    }
    if (n == MAX_DIRTY) {
        /* Too many: degrade to one covering rect. */
        rf_rect all = rects[0];
        for (int i = 1; i < n; i++)
            all = rf_rect_union(all, rects[i]);
        rects[0] = rf_rect_union(all, c);
        return 1;
    }
    rects[n] = c;
    return n + 1;
}

/* The rectangles that differ between the previous frame's layer states and
 * this frame's: old and new extent of every layer that appeared, vanished,
 * moved or changed opacity. */
static int
diff_states(const rf_layer_state *prev, int n_prev, const rf_layer_state *cur, int n_cur,
            const int *w, const int *h, rf_rect frame, rf_rect *rects)
{
    int n = 0;

    for (int i = 0; i < n_cur; i++) {
        const rf_layer_state *p = find_state(prev, n_prev, cur[i].layer);
        if (p && p->x == cur[i].x && p->y == cur[i].y && p->opacity == cur[i].opacity)
            continue;
        n = add_rect(rects, n, state_rect(&cur[i], w, h), frame);
        if (p)
            n = add_rect(rects, n, state_rect(p, w, h), frame);
    }
    for (int i = 0; i < n_prev; i++) {
        if (!find_state(cur, n_cur, prev[i].layer))
            n = add_rect(rects, n, state_rect(&prev[i], w, h), frame);
    }
    return n;
}

/* GPU memory one unit of w x h may take at its peak: the background, the
 * drawing frame and up to 8 pooled encoder frames (4:2:0, 1.5 bytes per
 * pixel each), layer textures (about 8 bytes per pixel of the frame for a
 * busy scene) and what an NVENC session keeps for itself. */
static size_t
gpu_bytes_for(const rf_unit *u)
{
    size_t px = (size_t)u->width * u->height;

    return px * 15 + px * 8 + ((size_t)96 << 20);
}

/* Left free for the driver and the rest of the process. */
#define GPU_HEADROOM ((size_t)256 << 20)

/* One slot at a time checks the GPU's free memory and takes its share, so
 * that slots starting together do not all count the same free bytes. */
static pthread_mutex_t gpu_mu = PTHREAD_MUTEX_INITIALIZER;

/* Whether the GPU has room for the unit now; a GPU that cannot be asked is
 * left to rf_comp_create to refuse. */
static bool
gpu_has_room(const rf_unit *u)
{
    size_t free_b = 0, total_b = 0, need = gpu_bytes_for(u);

    if (rf_comp_gpu_memory(&free_b, &total_b) != RF_OK || free_b >= need + GPU_HEADROOM)
        return true;
    rf_warn("unit %s: the GPU has %zu MiB free of %zu and a %ux%u unit may need %zu MiB; "
            "compositing on the CPU",
            u->unit_id, free_b >> 20, total_b >> 20, u->width, u->height,
            (need + GPU_HEADROOM) >> 20);
    return false;
}

static rf_err
open_compositor(const rf_unit *u, const rf_render_opts *o, rf_compositor **comp)
{
    const char *want = o && o->compositor ? o->compositor : "auto";
    rf_err rv = RF_EUNSUPPORTED;

    /* "auto" takes the GPU when one is usable and has room for the unit;
     * the CPU compositor is the fallback and the reference. */
    if (strcmp(want, "cpu") != 0) {
        pthread_mutex_lock(&gpu_mu);
        if (gpu_has_room(u))
            rv = rf_comp_create("cuda", (int)u->width, (int)u->height, RF_PIX_YUV420P, comp);
        pthread_mutex_unlock(&gpu_mu);
        if (rv == RF_OK)
            return RF_OK;
        if (strcmp(want, "cuda") == 0)
            rf_warn("CUDA compositor unavailable (%s); using the CPU compositor", rf_strerror(rv));
    }
    return rf_comp_create("cpu", (int)u->width, (int)u->height, RF_PIX_YUV420P, comp);
}

/* Writes audio up to sample target (per channel), keeping the muxer fed in
 * step with the video. */
static rf_err
feed_audio(rf_encoder *enc, const float *pcm, size_t *written, size_t target)
{
    rf_err rv = RF_OK;

    if (target > *written) {
        rv = rf_enc_audio(enc, pcm + *written * RF_AUDIO_CHANNELS, target - *written);
        *written = target;
    }
    return rv;
}

rf_err
rf_render_unit(const rf_unit *u, const rf_render_opts *o, rf_render_result *res)
{
    int64_t t_start = rf_mono_ms();
    rf_narration nar = {0};
    rf_caption *caps = NULL;
    int n_caps = 0;
    rf_timing tm = {0};
    rf_compositor *comp = NULL;
    rf_scene scene = {0};
    rf_encoder *enc = NULL;
    float *pcm = NULL;
    rf_layer_state *cur = NULL, *prev = NULL;
    rf_frame poster = {0};
    char side_tmp[2][RF_PATH_MAX + 96] = {"", ""};
    rf_frame dev = {0}; /* the GPU's frame when compositing with CUDA */
    bool on_gpu = false;
    bool enc_dev = false; /* the encoder's own frame is on the GPU: no dev, no download */
    int *lw = NULL, *lh = NULL;
    char tmp_path[RF_PATH_MAX + 96] = "";
    char dir[RF_PATH_MAX];
    char err[512] = "";
    bool tmp_created = false, sides_placed = false;
    rf_err rv;

    memset(res, 0, sizeof(*res));
    rf_strlcpy(res->output_path, u->output_path, sizeof(res->output_path));

    /* 1. Narration and the timeline it implies. */
    set_stage(o, RF_STAGE_AUDIO);
    rv = plan_narration(u, &nar, &tm, res);
    if (rv != RF_OK)
        goto out;

    uint32_t fps = u->fps;
    uint32_t n_frames = (uint32_t)((tm.duration_ms * fps + 500) / 1000);
    size_t samples_per_frame = RF_AUDIO_RATE / fps;
    size_t audio_total = (size_t)n_frames * RF_AUDIO_RATE / fps;
    /* Two caption lines' worth of text for the frame's shape. */
    int max_chars = u->width > u->height ? 80 : u->width == u->height ? 60 : 44;

    if (o && o->progress)
        atomic_store(&o->progress->frames_total, n_frames);

    rv = rf_captions_build(u->script, nar.words, nar.n_words, max_chars, tm.title_end_ms, &caps,
                           &n_caps);
    if (rv != RF_OK) {
        fail_with(res, "audio_generation_failed", false, "caption timing failed: %s",
                  rf_strerror(rv));
        goto out;
    }
    rv = rf_audio_master(&nar, tm.title_end_ms, audio_total, TARGET_LUFS, MAX_TRUE_PEAK_DB, &pcm,
                         &res->lufs, &res->true_peak_db);
    if (rv != RF_OK) {
        fail_with(res, "audio_generation_failed", false, "audio mastering failed: %s",
                  rf_strerror(rv));
        goto out;
    }

    /* 2. The scene: background and every layer rasterised once. */
    set_stage(o, RF_STAGE_SCENE);
    int64_t t_scene = rf_mono_ms();
    res->audio_ms = (uint32_t)(t_scene - t_start);
    rv = open_compositor(u, o, &comp);
    if (rv != RF_OK) {
        fail_with(res, "template_render_error", true, "compositor: %s", rf_strerror(rv));
        goto out;
    }
    rf_strlcpy(res->compositor, rf_comp_backend(comp), sizeof(res->compositor));
    on_gpu = strcmp(res->compositor, "cuda") == 0;
    if (on_gpu) {
        /* Composite on the GPU, then bring only the changed rects to the
         * software encoder's host frame. */
        rv = rf_comp_frame_alloc(comp, &dev);
        if (rv != RF_OK) {
            fail_with(res, "template_render_error", true, "GPU frame: %s", rf_strerror(rv));
            goto out;
        }
    }
    rv = rf_scene_build(u, caps, n_caps, &tm, comp, &scene);
    if (rv != RF_OK) {
        fail_with(res, "template_render_error", false, "scene build failed: %s", rf_strerror(rv));
        goto out;
    }
    int n_layers = scene.n_layers;
    int max_index = 0;
    for (int i = 0; i < n_layers; i++) {
        if (scene.layers[i].comp_index > max_index)
            max_index = scene.layers[i].comp_index;
    }
    cur = calloc((size_t)n_layers + 1, sizeof(*cur));
    prev = calloc((size_t)n_layers + 1, sizeof(*prev));
    lw = calloc((size_t)max_index + 1, sizeof(*lw));
    lh = calloc((size_t)max_index + 1, sizeof(*lh));
    if (!cur || !prev || !lw || !lh) {
        rv = RF_ENOMEM;
        fail_with(res, "template_render_error", true, "out of memory");
        goto out;
    }
    for (int i = 0; i < n_layers; i++) {
        lw[scene.layers[i].comp_index] = scene.layers[i].width;
        lh[scene.layers[i].comp_index] = scene.layers[i].height;
    }

    /* 3. Encode, writing a ".part" file next to the final one. */
    set_stage(o, RF_STAGE_ENCODE);
    int64_t t_encode = rf_mono_ms();
    res->scene_ms = (uint32_t)(t_encode - t_scene);
    rf_strlcpy(dir, u->output_path, sizeof(dir));
    rv = rf_mkdirs(dirname(dir));
    if (rv != RF_OK) {
        fail_with(res, "storage_upload_failed", true, "cannot create the output directory: %s",
                  strerror(errno));
        goto out;
    }
    rv = side_path(u->output_path, ".jpg", res->poster_path, sizeof(res->poster_path));
    if (rv == RF_OK)
        rv = side_path(u->output_path, ".vtt", res->captions_path, sizeof(res->captions_path));
    if (rv != RF_OK) {
        fail_with(res, "storage_upload_failed", false, "output path too long");
        goto out;
    }
    remove_stale_parts(u->output_path);
    remove_stale_parts(res->poster_path);
    remove_stale_parts(res->captions_path);
    rv = rf_fmt(tmp_path, sizeof(tmp_path), "%s.part-%s", u->output_path,
                u->lease_id[0] ? u->lease_id : "local");
    if (rv != RF_OK) {
        fail_with(res, "storage_upload_failed", false, "output path too long");
        goto out;
    }
    rf_enc_config ec = {
        .path = tmp_path,
        .container = u->container,
        .video_codec = u->video_codec,
        .audio_codec = u->audio_codec,
        .preset = u->preset[0] ? u->preset : NULL,
        .width = (int)u->width,
        .height = (int)u->height,
        .fps = (int)fps,
        .gop_frames = (int)fps * 2,
        .sample_rate = RF_AUDIO_RATE,
        .channels = RF_AUDIO_CHANNELS,
        .available = o ? o->encoders : NULL,
        .n_available = o ? o->n_encoders : 0,
        .host = o ? o->enc_host : NULL,
        .cuda_frames = on_gpu,
    };
    tmp_created = true;
    rv = rf_enc_open(&ec, &enc, err, sizeof(err));
    if (rv != RF_OK) {
        fail_with(res, "video_encoding_error", rv != RF_EINVAL && rv != RF_EUNSUPPORTED,
                  "encoder: %s", err);
        goto out;
    }
    rf_strlcpy(res->encoder, rf_enc_video_name(enc), sizeof(res->encoder));
    /* NVENC on a CUDA pool: the compositor draws straight into the
     * encoder's device frame and nothing crosses to the host. */
    enc_dev = rf_enc_device_frames(enc);
    if (enc_dev)
        rf_comp_frame_free(comp, &dev); /* not needed: give its GPU memory back */
    rf_strlcpy(res->encoder_note, rf_enc_note(enc), sizeof(res->encoder_note));
    if (res->encoder_note[0] != '\0')
        rf_info("unit %s: encoding with %s (passed over: %s)", u->unit_id, res->encoder,
                res->encoder_note);
    /* The poster is the title card, fully faded in. */
    uint32_t poster_at = (uint32_t)(tm.title_end_ms / 2 * fps / 1000);
    rv = rf_frame_alloc(&poster, RF_PIX_YUV420P, (int)u->width, (int)u->height);
    if (rv != RF_OK) {
        fail_with(res, "template_render_error", true, "out of memory");
        goto out;
    }

    rf_rect whole = {0, 0, (int)u->width, (int)u->height};
    rf_rect dirty[MAX_DIRTY];
    int n_prev = 0;
    size_t audio_written = 0;

    for (uint32_t i = 0; i < n_frames; i++) {
        if (canceled(o)) {
            rv = RF_ECANCELED;
            fail_with(res, "canceled", true, "unit canceled during encoding");
            goto out;
        }
        int64_t t_ms = (int64_t)i * 1000 / fps;
        int n_cur = rf_scene_states(&scene, t_ms, cur, n_layers);
        int n_dirty;
        rf_frame fr;

        if (i == 0) {
            dirty[0] = whole;
            n_dirty = 1;
        } else {
            n_dirty = diff_states(prev, n_prev, cur, n_cur, lw, lh, whole, dirty);
        }
        rv = rf_enc_frame(enc, &fr);
        if (rv == RF_OK && n_dirty > 0) {
            bool via_dev = on_gpu && !enc_dev;
            rv = rf_comp_render(comp, via_dev ? &dev : &fr, cur, n_cur, dirty, n_dirty);
            if (rv == RF_OK && via_dev)
                rv = rf_comp_download(comp, &dev, &fr, dirty, n_dirty);
            res->frames_composited++;
        }
        if (rv == RF_OK && i == poster_at) {
            if (enc_dev)
                rv = rf_comp_download(comp, &fr, &poster, &whole, 1);
            else
                copy_planes(&poster, &fr);
        }
        if (rv == RF_OK)
            rv = feed_audio(enc, pcm, &audio_written, (size_t)(i + 1) * samples_per_frame);
        if (rv == RF_OK)
            rv = rf_enc_submit(enc);
        if (rv != RF_OK) {
            fail_with(res, "video_encoding_error", true, "frame %u: %s", i, rf_strerror(rv));
            goto out;
        }
        rf_layer_state *swap = prev;
        prev = cur;
        cur = swap;
        n_prev = n_cur;
        if (o && o->progress)
            atomic_store(&o->progress->frames_done, i + 1);
    }
    rv = feed_audio(enc, pcm, &audio_written, audio_total);
    if (rv == RF_OK)
        rv = rf_enc_finish(enc, err, sizeof(err));
    if (rv != RF_OK) {
        fail_with(res, "video_encoding_error", true, "finishing the file: %s", err);
        goto out;
    }
    rf_enc_free(&enc);
    res->encode_ms = (uint32_t)(rf_mono_ms() - t_encode);

    /* 4. The side files, then everything into place: rename is atomic, so
     * the final names only ever hold complete files. */
    set_stage(o, RF_STAGE_FINISH);
    const char *lease = u->lease_id[0] ? u->lease_id : "local";
    rv = rf_fmt(side_tmp[0], sizeof(side_tmp[0]), "%s.part-%s", res->poster_path, lease);
    if (rv == RF_OK)
        rv = rf_fmt(side_tmp[1], sizeof(side_tmp[1]), "%s.part-%s", res->captions_path, lease);
    if (rv == RF_OK)
        rv = rf_poster_write_jpeg(&poster, side_tmp[0], 1280, err, sizeof(err));
    if (rv != RF_OK) {
        fail_with(res, "template_render_error", true, "poster frame: %s", err);
        goto out;
    }
    rv = rf_captions_write_vtt(caps, n_caps, side_tmp[1]);
    if (rv != RF_OK) {
        fail_with(res, "storage_upload_failed", true, "captions file: %s", strerror(errno));
        goto out;
    }
    /* Fencing at the last moment: a holder whose lease lapsed must not
     * overwrite the files of the agent that took the unit over (two
     * renders of a unit are equivalent but not byte-identical). */
    if (o && o->may_place && !o->may_place(o->may_place_ctx)) {
        rv = RF_ECANCELED;
        fail_with(res, "canceled", true, "the lease was lost before the files were placed");
        goto out;
    }
    sides_placed = true;
    if (rename(side_tmp[0], res->poster_path) != 0 ||
        rename(side_tmp[1], res->captions_path) != 0 || rename(tmp_path, u->output_path) != 0) {
        rv = RF_EIO;
        fail_with(res, "storage_upload_failed", true, "moving the files into place in %s: %s",
                  u->output_path, strerror(errno));
        goto out;
    }
    tmp_created = false;
    struct stat st;
    if (stat(u->output_path, &st) != 0) {
        rv = RF_EIO;
        fail_with(res, "storage_upload_failed", true, "stat %s: %s", u->output_path,
                  strerror(errno));
        goto out;
    }
    res->size_bytes = (uint64_t)st.st_size;
    rv = rf_sha256_file(u->output_path, res->sha256);
    if (rv != RF_OK) {
        fail_with(res, "storage_upload_failed", true, "checksum: %s", rf_strerror(rv));
        goto out;
    }
    res->frames = n_frames;
    res->duration_ms = (uint32_t)((uint64_t)n_frames * 1000 / fps);

out:
    res->render_ms = (uint32_t)(rf_mono_ms() - t_start);
    rf_enc_free(&enc);
    if (tmp_created)
        unlink(tmp_path);
    for (int k = 0; k < 2; k++)
        if (side_tmp[k][0] != '\0')
            unlink(side_tmp[k]); /* gone already after a successful rename */
    if (rv != RF_OK) {
        /* A failed unit leaves no side files of its own either. */
        if (sides_placed && tmp_created) {
            unlink(res->poster_path);
            unlink(res->captions_path);
        }
        res->poster_path[0] = '\0';
        res->captions_path[0] = '\0';
    }
    rf_frame_release(&poster);
    free(cur);
    free(prev);
    free(lw);
    free(lh);
    free(pcm);
    rf_scene_free(&scene);
    rf_comp_frame_free(comp, &dev);
    rf_comp_free(&comp);
    rf_captions_free(caps, n_caps);
    rf_narration_free(&nar);
    return rv;
}
