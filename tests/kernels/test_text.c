/* Text rasterisation: Pango layout through to the compositor texture. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "text.h"

typedef struct bbox {
    int x0, y0, x1, y1; /* [x0, x1) x [y0, y1); empty when x1 <= x0 */
    int n_opaque;
} bbox;

static bbox
alpha_bbox(const rf_layer_tex *t)
{
    bbox b = {t->width, t->height, 0, 0, 0};
    for (int y = 0; y < t->height; y++)
        for (int x = 0; x < t->width; x++) {
            uint8_t a = t->a[(size_t)y * (size_t)t->y_pitch + (size_t)x];
            if (a == 0)
                continue;
            b.x0 = x < b.x0 ? x : b.x0;
            b.y0 = y < b.y0 ? y : b.y0;
            b.x1 = x + 1 > b.x1 ? x + 1 : b.x1;
            b.y1 = y + 1 > b.y1 ? y + 1 : b.y1;
            b.n_opaque += a == 255;
        }
    return b;
}

static rf_text_style
base_style(void)
{
    rf_text_style st = {0};
    st.font_family = "Noto Sans";
    st.size_px = 32;
    st.weight = 400;
    st.color = 0xFFFFFFFF;
    st.align = RF_ALIGN_LEFT;
    st.line_spacing = 1.0;
    return st;
}

static void
test_white_text(void **state)
{
    (void)state;
    rf_text_style st = base_style();
    rf_layer_tex t;
    assert_int_equal(rf_text_render("Hello, world", &st, 400, &t), RF_OK);
    assert_true(t.width <= 400);
    assert_int_equal(t.width % 2, 0);
    assert_int_equal(t.height % 2, 0);
    assert_true(t.height >= 32 && t.height < 80); /* one line of 32 px text */
    bbox b = alpha_bbox(&t);
    assert_true(b.x1 > b.x0 && b.y1 > b.y0);
    assert_true(b.x1 - b.x0 > 100); /* twelve characters, not a dot */
    assert_true(b.n_opaque > 50);
    /* fully covered pixels are white: Y 235 */
    for (int y = 0; y < t.height; y++)
        for (int x = 0; x < t.width; x++) {
            size_t o = (size_t)y * (size_t)t.y_pitch + (size_t)x;
            if (t.a[o] == 255)
                assert_in_range(t.y[o], 234, 235);
            assert_true(t.y[o] <= t.a[o]);
        }
    rf_layer_tex_release(&t);
}

static void
test_wrapping(void **state)
{
    (void)state;
    const char *s = "The quick brown fox jumps over the lazy dog, again and again, "
                    "until the sentence is long enough to need several lines.";
    rf_text_style st = base_style();
    rf_layer_tex narrow, wide;
    assert_int_equal(rf_text_render(s, &st, 200, &narrow), RF_OK);
    assert_int_equal(rf_text_render(s, &st, 2000, &wide), RF_OK);
    assert_true(narrow.width <= 200);
    assert_true(narrow.height > 3 * wide.height);
    assert_true(wide.width > narrow.width);
    /* a line limit ellipsizes: no taller than two lines */
    rf_layer_tex two;
    st.max_lines = 2;
    assert_int_equal(rf_text_render(s, &st, 200, &two), RF_OK);
    assert_true(two.height < narrow.height);
    assert_true(two.height <= 2 * wide.height + 4);
    rf_layer_tex_release(&narrow);
    rf_layer_tex_release(&wide);
    rf_layer_tex_release(&two);
}

static void
test_scripts(void **state)
{
    (void)state;
    static const char *texts[] = {
        "مرحبا بالعالم",               /* Arabic, right to left, joined */
        "Привет, мир",                 /* Cyrillic */
        "你好，世界。视频生成",        /* CJK */
        "こんにちは",                  /* Japanese kana */
        "Launch day \xF0\x9F\x9A\x80", /* emoji fallback */
    };
    rf_text_style st = base_style();
    st.align = RF_ALIGN_CENTER;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        rf_layer_tex t;
        assert_int_equal(rf_text_render(texts[i], &st, 600, &t), RF_OK);
        bbox b = alpha_bbox(&t);
        assert_true(b.x1 - b.x0 > 40);
        assert_true(b.y1 - b.y0 > 10);
        rf_layer_tex_release(&t);
    }
}

static void
test_invalid_utf8(void **state)
{
    (void)state;
    rf_text_style st = base_style();
    rf_layer_tex t;
    assert_int_equal(rf_text_render("abc\xFF\xFE def \xC3", &st, 400, &t), RF_OK);
    bbox b = alpha_bbox(&t);
    assert_true(b.x1 > b.x0);
    rf_layer_tex_release(&t);
    /* empty text gives an (empty) texture, not an error */
    assert_int_equal(rf_text_render("", &st, 400, &t), RF_OK);
    assert_true(t.width >= 2 && t.height >= 2);
    rf_layer_tex_release(&t);
    assert_int_equal(rf_text_render(NULL, &st, 400, &t), RF_EINVAL);
    st.size_px = 0;
    assert_int_equal(rf_text_render("x", &st, 400, &t), RF_EINVAL);
}

static void
test_box_and_shadow(void **state)
{
    (void)state;
    rf_text_style st = base_style();
    rf_layer_tex plain, boxed, shadowed;
    assert_int_equal(rf_text_render("Boxed", &st, 400, &plain), RF_OK);
    st.box = 0x000000FF;
    st.box_pad = 12;
    assert_int_equal(rf_text_render("Boxed", &st, 400, &boxed), RF_OK);
    assert_true(boxed.width >= plain.width + 22);
    assert_true(boxed.height >= plain.height + 22);
    /* inside the box, away from the rounded corners and the text: opaque black */
    size_t o = (size_t)(boxed.height / 2) * (size_t)boxed.y_pitch + 4;
    assert_int_equal(boxed.a[o], 255);
    assert_int_equal(boxed.y[o], 16);
    /* the very corner is cut by the rounding */
    assert_true(boxed.a[0] < 255);
    st.box = 0;
    st.shadow = 0x000000FF;
    assert_int_equal(rf_text_render("Boxed", &st, 400, &shadowed), RF_OK);
    assert_true(shadowed.width >= plain.width);
    /* the shadow adds dark covered pixels: some opaque pixel has Y < 235 */
    int dark = 0;
    for (int y = 0; y < shadowed.height; y++)
        for (int x = 0; x < shadowed.width; x++) {
            size_t k = (size_t)y * (size_t)shadowed.y_pitch + (size_t)x;
            dark += shadowed.a[k] == 255 && shadowed.y[k] < 100;
        }
    assert_true(dark > 0);
    rf_layer_tex_release(&plain);
    rf_layer_tex_release(&boxed);
    rf_layer_tex_release(&shadowed);
}

/* The first column with ink in rows [y0, y1). */
static int
first_ink_x(const rf_layer_tex *t, int y0, int y1)
{
    int best = t->width;
    for (int y = y0; y < y1; y++)
        for (int x = 0; x < best; x++)
            if (t->a[(size_t)y * (size_t)t->y_pitch + (size_t)x] != 0)
                best = x;
    return best;
}

static void
test_alignment(void **state)
{
    (void)state;
    rf_text_style st = base_style();
    rf_layer_tex l, r;
    const char *s = "A much longer first line\nshort";
    assert_int_equal(rf_text_render(s, &st, 800, &l), RF_OK);
    st.align = RF_ALIGN_RIGHT;
    assert_int_equal(rf_text_render(s, &st, 800, &r), RF_OK);
    /* second line: starts at the left edge when left-aligned, far right otherwise */
    int lx = first_ink_x(&l, l.height / 2 + 4, l.height);
    int rx = first_ink_x(&r, r.height / 2 + 4, r.height);
    assert_true(lx < 10);
    assert_true(rx > r.width / 2);
    rf_layer_tex_release(&l);
    rf_layer_tex_release(&r);
}

static void
test_shape_rect(void **state)
{
    (void)state;
    rf_layer_tex t;
    assert_int_equal(rf_shape_rect(21, 10, 0, 0xFF0000FF, &t), RF_OK);
    assert_int_equal(t.width, 22); /* padded to even */
    for (int y = 0; y < 10; y++)
        for (int x = 0; x < 21; x++) {
            size_t o = (size_t)y * (size_t)t.y_pitch + (size_t)x;
            assert_int_equal(t.a[o], 255);
            assert_int_equal(t.y[o], 63); /* BT.709 red */
        }
    assert_int_equal(t.a[21], 0);
    rf_layer_tex_release(&t);
    assert_int_equal(rf_shape_rect(40, 40, 20, 0x00FF0080, &t), RF_OK);
    assert_int_equal(t.a[0], 0);                                 /* round corner */
    assert_in_range(t.a[20 * (size_t)t.y_pitch + 20], 127, 129); /* alpha 0x80 */
    rf_layer_tex_release(&t);
    assert_int_equal(rf_shape_rect(0, 10, 0, 0xFFFFFFFF, &t), RF_EINVAL);
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
        cmocka_unit_test(test_white_text),     cmocka_unit_test(test_wrapping),
        cmocka_unit_test(test_scripts),        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_box_and_shadow), cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_shape_rect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
