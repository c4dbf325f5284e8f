/* The per-unit pipeline end to end, without the network: a small unit is
 * rendered to a real file with its poster and captions; the file is checked
 * with ffprobe, the side files by content, the fallback note, and a
 * canceled render leaves nothing behind. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "render.h"
#include "rf_util.h"

static char dir[] = "/tmp/rf-render-XXXXXX";

static void
make_unit(rf_unit *u, const char *name)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->unit_id, sizeof(u->unit_id), "unt_test");
    snprintf(u->lease_id, sizeof(u->lease_id), "lse_test");
    snprintf(u->rendition, sizeof(u->rendition), "youtube");
    u->width = 640;
    u->height = 360;
    u->fps = 30;
    u->duration_ms = 6000;
    snprintf(u->container, sizeof(u->container), "mp4");
    snprintf(u->video_codec, sizeof(u->video_codec), "h264");
    snprintf(u->audio_codec, sizeof(u->audio_codec), "aac");
    snprintf(u->preset, sizeof(u->preset), "ultrafast");
    snprintf(u->output_path, sizeof(u->output_path), "%s/%s.mp4", dir, name);
    u->title = "Render test";
    u->description = "A <small> & quick one";
    u->script = "Short and sweet. Captions <follow> the voice & the timing.";
    snprintf(u->style, sizeof(u->style), "modern");
    snprintf(u->voice, sizeof(u->voice), "female");
    u->voice_speed = 1.0;
}

static int
count_files(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void
run(const char *cmd, char *out, size_t len)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = '\0';
    assert_int_equal(pclose(p), 0);
}

static void
test_render_with_side_files(void **state)
{
    (void)state;
    rf_unit u;
    rf_render_result res;
    static const char only_x264[][RF_NAME_MAX] = {"libx264", "aac"};
    rf_render_opts o = {.compositor = "cpu", .encoders = only_x264, .n_encoders = 2};
    char cmd[2048], out[4096];

    make_unit(&u, "one");
    assert_int_equal(rf_render_unit(&u, &o, &res), RF_OK);
    assert_string_equal(res.encoder, "libx264");
    assert_string_equal(res.compositor, "cpu");
    /* NVENC comes first for h264; this host's probe list lacks it. */
    assert_non_null(strstr(res.encoder_note, "h264_nvenc"));
    assert_int_equal(res.frames, 180);
    assert_true(res.frames_composited > 0 && res.frames_composited < res.frames);

    char sha[65];
    assert_int_equal(rf_sha256_file(u.output_path, sha), RF_OK);
    assert_string_equal(sha, res.sha256);

    snprintf(cmd, sizeof(cmd),
             "ffprobe -v error -show_entries stream=codec_name,width,height -of csv=p=0 '%s'",
             res.poster_path);
    run(cmd, out, sizeof(out));
    assert_string_equal(out, "mjpeg,640,360\n");

    FILE *f = fopen(res.captions_path, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    fclose(f);
    assert_memory_equal(out, "WEBVTT\n\n1\n", 10);
    assert_non_null(strstr(out, " --> "));
    assert_non_null(strstr(out, "&lt;follow&gt;")); /* escaped, never a tag */
    assert_non_null(strstr(out, "&amp;"));
    assert_null(strstr(out, "<follow>"));

    assert_int_equal(count_files(), 3); /* video, poster, captions; no .part */
}

static void
test_canceled_render_leaves_nothing(void **state)
{
    (void)state;
    rf_unit u;
    rf_render_result res;
    rf_render_progress p;
    int before = count_files();

    atomic_init(&p.frames_done, 0);
    atomic_init(&p.frames_total, 0);
    atomic_init(&p.stage, 0);
    atomic_init(&p.cancel, true);
    rf_render_opts o = {.compositor = "cpu", .progress = &p};
    make_unit(&u, "two");
    assert_int_equal(rf_render_unit(&u, &o, &res), RF_ECANCELED);
    assert_int_equal(count_files(), before);
    assert_string_equal(res.poster_path, "");
}

static int
cleanup(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

int
main(void)
{
    if (mkdtemp(dir) == NULL)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_with_side_files),
        cmocka_unit_test(test_canceled_render_leaves_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, cleanup);
}
