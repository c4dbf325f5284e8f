/* Scene building, checked on rendered frames: background colour, where text
 * appears and when, the four styles, and the layout per frame shape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "scene.h"

static char k_title[] = "Ten Tips for Better Sleep";
static char k_desc[] = "Simple habits that make a real difference";
static char k_script[] = "Sleep matters.";

static void
init_unit(rf_unit *u, int w, int h, const char *style)
{
    memset(u, 0, sizeof(*u));
    u->width = (uint32_t)w;
    u->height = (uint32_t)h;
    u->fps = 30;
    u->duration_ms = 10000;
    u->title = k_title;
    u->description = k_desc;
    u->script = k_script;
    strcpy(u->style, style);
}

static rf_caption k_caps[] = {
    {1500, 3000, "Sleep matters more than you think"},
    {3500, 5000, "Keep a regular schedule"},
};
static const rf_timing k_tm = {.duration_ms = 10000, .title_end_ms = 1500, .end_card_ms = 8000};

typedef struct fixture {
    rf_unit u;
    rf_compositor *c;
    rf_scene s;
    rf_frame f;
} fixture;

static void
fixture_build(fixture *fx, int w, int h, const char *style)
{
    init_unit(&fx->u, w, h, style);
    fx->c = NULL;
    assert_int_equal(rf_comp_create("cpu", w, h, RF_PIX_YUV420P, &fx->c), RF_OK);
    assert_int_equal(rf_scene_build(&fx->u, k_caps, 2, &k_tm, fx->c, &fx->s), RF_OK);
    assert_int_equal(rf_frame_alloc(&fx->f, RF_PIX_YUV420P, w, h), RF_OK);
}

static void
fixture_free(fixture *fx)
{
    rf_scene_free(&fx->s);
    rf_comp_free(&fx->c);
    rf_frame_release(&fx->f);
}

static void
render_at(fixture *fx, int64_t t)
{
    rf_layer_state st[16];
    int n = rf_scene_states(&fx->s, t, st, 16);
    rf_rect all = {0, 0, fx->f.width, fx->f.height};
    assert_int_equal(rf_comp_render(fx->c, &fx->f, st, n, &all, 1), RF_OK);
}

static uint8_t
py(const rf_frame *f, int x, int y)
{
    return f->data[0][(size_t)y * (size_t)f->linesize[0] + (size_t)x];
}

/* pixels in r with Y below thr */
static int
count_dark(const rf_frame *f, rf_rect r, uint8_t thr)
{
    int n = 0;
    for (int y = r.y; y < r.y + r.h; y++)
        for (int x = r.x; x < r.x + r.w; x++)
            n += py(f, x, y) < thr;
    return n;
}

/* the layer whose visibility window starts at t_in (first one) */
static const rf_scene_layer *
layer_starting(const rf_scene *s, int64_t t_in)
{
    for (int i = 0; i < s->n_layers; i++)
        if (s->layers[i].t_in == t_in)
            return &s->layers[i];
    return NULL;
}

static rf_rect
layer_rect(const rf_scene_layer *l)
{
    return (rf_rect){l->x, l->y, l->width, l->height};
}

static void
test_minimal_frame(void **state)
{
    (void)state;
    fixture fx;
    fixture_build(&fx, 640, 360, "minimal");
    uint8_t by, bu, bv;
    rf_rgb_to_yuv709(0xF8, 0xF8, 0xF6, &by, &bu, &bv);

    render_at(&fx, 1000);
    assert_int_equal(py(&fx.f, 1, 1), by);
    assert_int_equal(fx.f.data[1][0], bu);
    assert_int_equal(fx.f.data[2][0], bv);
    assert_int_equal(py(&fx.f, 638, 358), by);
    /* the title is the first layer shown from 0: dark text inside its box */
    const rf_scene_layer *title = layer_starting(&fx.s, 0);
    assert_non_null(title);
    rf_rect tr = layer_rect(title);
    assert_true(tr.x >= 0 && tr.y >= 0 && tr.x + tr.w <= 640 && tr.y + tr.h <= 360);
    assert_true(count_dark(&fx.f, tr, 60) > 100);
    /* nothing dark in the lower third at t = 1 s (no caption yet) */
    rf_rect low = {0, 300, 640, 60};
    assert_int_equal(count_dark(&fx.f, low, 200), 0);

    /* a caption at 2 s: dark pixels in its rect, in the lower third */
    const rf_scene_layer *cap1 = layer_starting(&fx.s, 1500);
    assert_non_null(cap1);
    rf_rect cr = layer_rect(cap1);
    assert_true(cr.y > 360 / 2);
    render_at(&fx, 2000);
    assert_true(count_dark(&fx.f, cr, 60) > 50);
    /* the title is gone */
    assert_int_equal(count_dark(&fx.f, tr, 200), 0);

    /* between the captions (3.0..3.5 s): the caption area is background only */
    render_at(&fx, 3200);
    const rf_scene_layer *cap2 = layer_starting(&fx.s, 3500);
    assert_non_null(cap2);
    rf_rect area = rf_rect_union(cr, layer_rect(cap2));
    for (int y = area.y; y < area.y + area.h; y++)
        for (int x = area.x; x < area.x + area.w; x++)
            assert_int_equal(py(&fx.f, x, y), py(&fx.s.background, x, y));

    /* end card at 9 s: dark text around the middle */
    render_at(&fx, 9000);
    rf_rect mid = {0, 100, 640, 160};
    assert_true(count_dark(&fx.f, mid, 60) > 100);
    fixture_free(&fx);
}

static void
mean_yuv(const rf_frame *f, double m[3])
{
    for (int p = 0; p < 3; p++) {
        int w = p ? f->width / 2 : f->width, h = p ? f->height / 2 : f->height;
        double sum = 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                sum += f->data[p][(size_t)y * (size_t)f->linesize[p] + (size_t)x];
        m[p] = sum / (w * h);
    }
}

static void
test_styles_differ(void **state)
{
    (void)state;
    static const char *styles[] = {"modern", "classic", "minimal", "corporate"};
    double m[4][3];
    for (int i = 0; i < 4; i++) {
        fixture fx;
        fixture_build(&fx, 320, 180, styles[i]);
        mean_yuv(&fx.s.background, m[i]);
        fixture_free(&fx);
    }
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++) {
            double d = 0;
            for (int p = 0; p < 3; p++)
                d += m[i][p] > m[j][p] ? m[i][p] - m[j][p] : m[j][p] - m[i][p];
            assert_true(d > 3.0);
        }
    /* an unknown style is modern */
    fixture a, b;
    fixture_build(&a, 320, 180, "modern");
    fixture_build(&b, 320, 180, "no-such-style");
    for (int y = 0; y < 180; y++)
        assert_memory_equal(a.s.background.data[0] + (size_t)y * (size_t)a.s.background.linesize[0],
                            b.s.background.data[0] + (size_t)y * (size_t)b.s.background.linesize[0],
                            320);
    fixture_free(&a);
    fixture_free(&b);
}

static void
test_colour_override(void **state)
{
    (void)state;
    rf_unit u;
    init_unit(&u, 320, 180, "minimal");
    u.n_colors = 1;
    strcpy(u.colors[0], "#204080");
    rf_compositor *c = NULL;
    rf_scene s;
    assert_int_equal(rf_comp_create("cpu", 320, 180, RF_PIX_NV12, &c), RF_OK);
    assert_int_equal(rf_scene_build(&u, NULL, 0, &k_tm, c, &s), RF_OK);
    uint8_t y, cu, cv;
    rf_rgb_to_yuv709(0x20, 0x40, 0x80, &y, &cu, &cv);
    assert_int_equal(py(&s.background, 0, 0), y);
    assert_int_equal(s.background.data[1][0], cu);
    assert_int_equal(s.background.data[2][0], cv);
    rf_scene_free(&s);
    rf_scene_free(&s); /* idempotent */
    /* a malformed colour keeps the default */
    strcpy(u.colors[0], "#12345");
    assert_int_equal(rf_scene_build(&u, NULL, 0, &k_tm, c, &s), RF_OK);
    rf_rgb_to_yuv709(0xF8, 0xF8, 0xF6, &y, NULL, NULL);
    assert_int_equal(py(&s.background, 0, 0), y);
    rf_scene_free(&s);
    rf_comp_free(&c);
}

static void
test_portrait_layout(void **state)
{
    (void)state;
    fixture land, port;
    fixture_build(&land, 640, 360, "modern");
    fixture_build(&port, 360, 640, "modern");
    for (int k = 0; k < 2; k++) {
        const fixture *fx = k ? &port : &land;
        for (int i = 0; i < fx->s.n_layers; i++) {
            const rf_scene_layer *l = &fx->s.layers[i];
            assert_int_equal(l->x % 2, 0);
            assert_int_equal(l->y % 2, 0);
            assert_true(l->x >= 0 && l->y >= 0);
            assert_true(l->x + l->width <= fx->s.width);
            assert_true(l->y + l->height <= fx->s.height);
            assert_true(l->width <= fx->s.width * 0.9);
        }
    }
    /* captions: ~70% down in portrait, lower third in landscape */
    const rf_scene_layer *cp = layer_starting(&port.s, 1500);
    const rf_scene_layer *cl = layer_starting(&land.s, 1500);
    assert_non_null(cp);
    assert_non_null(cl);
    int cyp = cp->y + cp->height / 2, cyl = cl->y + cl->height / 2;
    assert_in_range(cyp, 640 * 60 / 100, 640 * 80 / 100);
    assert_in_range(cyl, 360 * 2 / 3, 360);
    /* portrait text is set for the narrow frame: the title wraps to more lines
     * (taller) rather than being a shrunken landscape layout */
    const rf_scene_layer *tp = layer_starting(&port.s, 0);
    const rf_scene_layer *tl = layer_starting(&land.s, 0);
    assert_true(tp->height > tl->height);
    fixture_free(&land);
    fixture_free(&port);
}

static void
test_states_fades(void **state)
{
    (void)state;
    fixture fx;
    fixture_build(&fx, 640, 360, "classic");
    const rf_scene_layer *cap = layer_starting(&fx.s, 1500);
    assert_non_null(cap);
    assert_int_equal(cap->t_out, 3000);
    assert_true(cap->fade_ms > 0);
    rf_layer_state st[16], st2[16];
    int prev_op = -1, prev_y = 1 << 30;
    /* fade in: opacity rises, the layer rises into place */
    for (int64_t t = cap->t_in + 1; t < cap->t_in + cap->fade_ms; t += 10) {
        int n = rf_scene_states(&fx.s, t, st, 16);
        const rf_layer_state *c = NULL;
        for (int i = 0; i < n; i++)
            if (st[i].layer == cap->comp_index)
                c = &st[i];
        if (c == NULL)
            continue; /* opacity 0 at the very start */
        assert_true(c->opacity >= prev_op);
        assert_true(c->y <= prev_y);
        assert_true(c->y >= cap->y);
        assert_int_equal(c->y % 2, 0);
        prev_op = c->opacity;
        prev_y = c->y;
        /* deterministic */
        assert_int_equal(rf_scene_states(&fx.s, t, st2, 16), n);
        for (int i = 0; i < n; i++) {
            assert_int_equal(st[i].layer, st2[i].layer);
            assert_int_equal(st[i].x, st2[i].x);
            assert_int_equal(st[i].y, st2[i].y);
            assert_int_equal(st[i].opacity, st2[i].opacity);
        }
    }
    assert_true(prev_op > 200);
    /* fully in */
    int n = rf_scene_states(&fx.s, 2200, st, 16);
    assert_int_equal(n, 1);
    assert_int_equal(st[0].opacity, 255);
    assert_int_equal(st[0].y, cap->y);
    /* fading out near the end, gone at t_out */
    n = rf_scene_states(&fx.s, cap->t_out - cap->fade_ms / 2, st, 16);
    assert_int_equal(n, 1);
    assert_in_range(st[0].opacity, 100, 160);
    assert_int_equal(rf_scene_states(&fx.s, cap->t_out, st, 16), 0);
    /* max limits the count */
    assert_int_equal(rf_scene_states(&fx.s, 1000, st, 1), 1);
    fixture_free(&fx);
}

static void
test_overlapping_captions(void **state)
{
    (void)state;
    rf_unit u;
    init_unit(&u, 320, 180, "corporate");
    rf_caption caps[] = {{0, 4000, "Starts under the title"},
                         {2500, 3500, "Overlaps the first"},
                         {3000, 9500, "Runs into the end card"},
                         {5000, 5000, "Empty window"},
                         {6000, 7000, "   "}};
    rf_compositor *c = NULL;
    rf_scene s;
    assert_int_equal(rf_comp_create("cpu", 320, 180, RF_PIX_YUV420P, &c), RF_OK);
    assert_int_equal(rf_scene_build(&u, caps, 5, &k_tm, c, &s), RF_OK);
    /* no two captions visible at once, none during the title or end card */
    for (int64_t t = 0; t < k_tm.duration_ms; t += 50) {
        rf_layer_state st[16];
        int n = rf_scene_states(&s, t, st, 16);
        int caps_visible = 0;
        for (int i = 0; i < s.n_layers; i++) {
            const rf_scene_layer *l = &s.layers[i];
            bool is_cap = l->t_in >= k_tm.title_end_ms && l->t_out <= k_tm.end_card_ms;
            for (int k = 0; k < n; k++)
                caps_visible += is_cap && st[k].layer == l->comp_index;
        }
        assert_true(caps_visible <= 1);
    }
    /* first caption: [1500, 2500), second [2500, 3000), third [3000, 8000) */
    assert_non_null(layer_starting(&s, 2500));
    assert_int_equal(layer_starting(&s, 2500)->t_out, 3000);
    assert_int_equal(layer_starting(&s, 3000)->t_out, 8000);
    rf_scene_free(&s);
    rf_comp_free(&c);
}

static void
test_bad_input(void **state)
{
    (void)state;
    rf_unit u;
    init_unit(&u, 321, 180, "modern");
    rf_compositor *c = NULL;
    rf_scene s;
    assert_int_equal(rf_comp_create("cpu", 320, 180, RF_PIX_YUV420P, &c), RF_OK);
    assert_int_equal(rf_scene_build(&u, NULL, 0, &k_tm, c, &s), RF_EINVAL);
    rf_scene_free(&s);
    /* compositor of another size: refused, and nothing leaks */
    init_unit(&u, 640, 360, "modern");
    assert_int_not_equal(rf_scene_build(&u, NULL, 0, &k_tm, c, &s), RF_OK);
    rf_scene_free(&s);
    assert_int_equal(rf_scene_states(NULL, 0, NULL, 0), 0);
    rf_comp_free(&c);
}

/* fontconfig keeps process-lifetime caches that LeakSanitizer reports as
 * leaks (RF_SANITIZE builds); they are not ours. Unused without ASan. */
const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
    return "leak:libfontconfig.so\n";
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_frame),   cmocka_unit_test(test_styles_differ),
        cmocka_unit_test(test_colour_override), cmocka_unit_test(test_portrait_layout),
        cmocka_unit_test(test_states_fades),    cmocka_unit_test(test_overlapping_captions),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
