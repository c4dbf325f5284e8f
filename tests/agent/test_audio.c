/* Narration (espeak-ng), captions and loudness mastering (agent/audio.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio.h"

static const char *const hello = "Hello world. This is a test of the narration.";

static void
check_word_slices(const char *script, const rf_narration *n, const char *const *expect,
                  size_t n_expect)
{
    assert_int_equal(n->n_words, n_expect);
    for (size_t i = 0; i < n_expect; i++) {
        const rf_word *w = &n->words[i];
        assert_true(w->text_start + w->text_len <= strlen(script));
        char got[64] = {0};
        assert_true(w->text_len < sizeof(got));
        memcpy(got, script + w->text_start, w->text_len);
        assert_string_equal(got, expect[i]);
        if (i > 0)
            assert_true(w->start_ms >= n->words[i - 1].start_ms);
        assert_true(w->end_ms >= w->start_ms);
    }
}

static void
test_synth_hello(void **state)
{
    (void)state;
    static const char *const expect[] = {"Hello", "world", "This", "is",       "a",
                                         "test",  "of",    "the",  "narration"};
    rf_narration n = {0};
    char err[256] = "";
    assert_int_equal(rf_narration_synth(hello, "female", 1.0, 0.0, &n, err, sizeof(err)), RF_OK);
    assert_true(n.frames > RF_AUDIO_RATE / 2);
    assert_non_null(n.pcm);
    check_word_slices(hello, &n, expect, sizeof(expect) / sizeof(expect[0]));
    /* The last word ends with the (trimmed) audio, within 50 ms. */
    int64_t dur_ms = (int64_t)n.frames * 1000 / RF_AUDIO_RATE;
    assert_true(n.words[n.n_words - 1].end_ms <= dur_ms);
    assert_true(n.words[n.n_words - 1].end_ms >= dur_ms - 50);
    /* Stereo carries the same mono speech, and it is not silent. */
    float peak = 0;
    for (size_t i = 0; i < n.frames; i++) {
        assert_true(n.pcm[2 * i] == n.pcm[2 * i + 1]);
        peak = fmaxf(peak, fabsf(n.pcm[2 * i]));
    }
    assert_true(peak > 0.05f);
    rf_narration_free(&n);
    assert_null(n.pcm);
    rf_narration_free(&n); /* NULL-safe twice */
    rf_narration_free(NULL);
}

/* Median pitch (Hz) of voiced 40 ms windows, by autocorrelation. */
static double
estimate_f0(const rf_narration *n)
{
    const size_t w = RF_AUDIO_RATE / 25, lo = RF_AUDIO_RATE / 400, hi = RF_AUDIO_RATE / 60;
    double est[1024];
    size_t ne = 0;
    for (size_t s = 0; s + w + hi < n->frames && ne < 1024; s += w) {
        double e = 0;
        for (size_t i = 0; i < w; i++)
            e += (double)n->pcm[2 * (s + i)] * n->pcm[2 * (s + i)];
        if (e / (double)w < 1e-3)
            continue;
        size_t best = 0;
        double bv = 0;
        for (size_t lag = lo; lag < hi; lag += 1) {
            double c = 0;
            for (size_t i = 0; i < w; i += 2)
                c += (double)n->pcm[2 * (s + i)] * n->pcm[2 * (s + i + lag)];
            if (c > bv) {
                bv = c;
                best = lag;
            }
        }
        if (bv > 0.25 * e && best > 0)
            est[ne++] = (double)RF_AUDIO_RATE / (double)best;
    }
    assert_true(ne > 5);
    for (size_t i = 0; i < ne; i++)
        for (size_t j = i + 1; j < ne; j++)
            if (est[j] < est[i]) {
                double t = est[i];
                est[i] = est[j];
                est[j] = t;
            }
    return est[ne / 2];
}

static void
test_voices_differ(void **state)
{
    (void)state;
    const char *names[] = {"female", "male", "neutral"};
    double f0[3];
    rf_narration n[3] = {0};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rf_narration_synth(hello, names[i], 1.0, 0.0, &n[i], NULL, 0), RF_OK);
        f0[i] = estimate_f0(&n[i]);
    }
    print_message("f0 female %.0f Hz, male %.0f Hz, neutral %.0f Hz\n", f0[0], f0[1], f0[2]);
    /* Female clearly higher than male; neutral in between, distinct from both. */
    assert_true(f0[0] > f0[1] * 1.3);
    assert_true(f0[2] > f0[1] * 1.08);
    assert_true(f0[2] < f0[0] / 1.08);
    /* An unknown voice falls back to female (espeak-ng adds breath noise,
     * so compare the voice, not the samples). */
    rf_narration u = {0};
    assert_int_equal(rf_narration_synth(hello, "robot", 1.0, 0.0, &u, NULL, 0), RF_OK);
    assert_int_equal(u.n_words, n[0].n_words);
    assert_true(fabs(estimate_f0(&u) - f0[0]) < f0[0] * 0.03);
    rf_narration_free(&u);
    for (int i = 0; i < 3; i++)
        rf_narration_free(&n[i]);
}

static void
test_speed_and_pitch(void **state)
{
    (void)state;
    rf_narration base = {0}, fast = {0}, high = {0};
    assert_int_equal(rf_narration_synth(hello, "male", 1.0, 0.0, &base, NULL, 0), RF_OK);
    assert_int_equal(rf_narration_synth(hello, "male", 1.6, 0.0, &fast, NULL, 0), RF_OK);
    assert_int_equal(rf_narration_synth(hello, "male", 1.0, 5.0, &high, NULL, 0), RF_OK);
    assert_true((double)fast.frames < (double)base.frames * 0.8);
    double f_base = estimate_f0(&base), f_high = estimate_f0(&high);
    /* +5 semitones is x1.33; accept a wide band around it. */
    assert_true(f_high > f_base * 1.15);
    rf_narration_free(&base);
    rf_narration_free(&fast);
    rf_narration_free(&high);
}

static bool
is_boundary(const char *s, size_t off)
{
    return off == strlen(s) || ((unsigned char)s[off] & 0xC0) != 0x80;
}

static void
test_utf8_offsets(void **state)
{
    (void)state;
    /* Latin with accents (English voice) and a Cyrillic tail it spells. */
    const char *mixed = "Café naïve über façade. Привет, the end.";
    rf_narration n = {0};
    assert_int_equal(rf_narration_synth(mixed, "female", 1.0, 0.0, &n, NULL, 0), RF_OK);
    assert_true(n.n_words >= 6);
    bool saw_naive = false, saw_cafe = false;
    for (size_t i = 0; i < n.n_words; i++) {
        const rf_word *w = &n.words[i];
        assert_true(is_boundary(mixed, w->text_start));
        assert_true(is_boundary(mixed, w->text_start + w->text_len));
        if (i > 0)
            assert_true(w->text_start >= n.words[i - 1].text_start + n.words[i - 1].text_len);
        saw_naive |= w->text_len == strlen("naïve") &&
                     memcmp(mixed + w->text_start, "naïve", w->text_len) == 0;
        saw_cafe |= w->text_len == strlen("Café") &&
                    memcmp(mixed + w->text_start, "Café", w->text_len) == 0;
    }
    assert_true(saw_naive && saw_cafe);
    rf_narration_free(&n);

    /* A Russian script gets a Russian voice: one event per word. */
    const char *ru = "Привет мир, как дела?";
    static const char *const ru_words[] = {"Привет", "мир", "как", "дела"};
    assert_int_equal(rf_narration_synth(ru, "male", 1.0, 0.0, &n, NULL, 0), RF_OK);
    check_word_slices(ru, &n, ru_words, 4);
    rf_narration_free(&n);

    /* Markup-looking text is read as text, not swallowed as SSML. */
    const char *lt = "Five <b> is less than ten";
    assert_int_equal(rf_narration_synth(lt, "female", 1.0, 0.0, &n, NULL, 0), RF_OK);
    assert_true(n.n_words >= 5);
    assert_int_equal(n.words[n.n_words - 1].text_start, strlen(lt) - 3);
    rf_narration_free(&n);
}

static void
test_empty_script(void **state)
{
    (void)state;
    rf_narration n = {0};
    char err[256] = "";
    assert_int_equal(rf_narration_synth("", "female", 1.0, 0.0, &n, err, sizeof(err)), RF_EAUDIO);
    assert_non_null(strstr(err, "empty"));
    err[0] = '\0';
    assert_int_equal(rf_narration_synth(" \n\t ", "male", 1.0, 0.0, &n, err, sizeof(err)),
                     RF_EAUDIO);
    assert_true(err[0] != '\0');
    assert_int_equal(rf_narration_synth(NULL, "male", 1.0, 0.0, &n, err, sizeof(err)), RF_EAUDIO);
    assert_null(n.pcm);
    assert_null(n.words);
}

static void
test_master_loudness(void **state)
{
    (void)state;
    rf_narration n = {0};
    assert_int_equal(rf_narration_synth(hello, "male", 1.0, 0.0, &n, NULL, 0), RF_OK);
    const size_t total = n.frames + RF_AUDIO_RATE; /* 0.5 s lead-in, 0.5 s tail */
    float *pcm = NULL;
    double lufs = 0, tp = 0;
    assert_int_equal(rf_audio_master(&n, 500, total, -14.0, -1.0, &pcm, &lufs, &tp), RF_OK);
    assert_non_null(pcm);
    /* Independent measurement of the returned track agrees with the report. */
    double l2 = 0, tp2 = 0;
    assert_int_equal(rf_audio_measure(pcm, total, &l2, &tp2), RF_OK);
    print_message("master: %.2f LUFS, %.2f dBTP\n", l2, tp2);
    assert_true(fabs(l2 - -14.0) <= 1.0);
    assert_true(tp2 <= -1.0);
    assert_true(fabs(l2 - lufs) < 0.01 && fabs(tp2 - tp) < 0.01);
    /* Silence before the offset, speech after it. */
    for (size_t i = 0; i < RF_AUDIO_RATE / 2 * 2; i++)
        assert_true(pcm[i] == 0.0f);
    float peak = 0;
    for (size_t i = RF_AUDIO_RATE / 2 * 2; i < total * 2; i++)
        peak = fmaxf(peak, fabsf(pcm[i]));
    assert_true(peak > 0.3f);
    free(pcm);

    /* A track shorter than offset + narration truncates the narration. */
    const size_t short_total = RF_AUDIO_RATE;
    assert_int_equal(rf_audio_master(&n, 200, short_total, -16.0, -1.5, &pcm, &lufs, &tp), RF_OK);
    assert_int_equal(rf_audio_measure(pcm, short_total, &l2, &tp2), RF_OK);
    assert_true(fabs(l2 - -16.0) <= 1.0);
    assert_true(tp2 <= -1.5);
    free(pcm);

    /* Offset past the end: exact-length silence. */
    assert_int_equal(rf_audio_master(&n, 5000, 1000, -14.0, -1.0, &pcm, &lufs, &tp), RF_OK);
    for (size_t i = 0; i < 2000; i++)
        assert_true(pcm[i] == 0.0f);
    free(pcm);
    rf_narration_free(&n);
}

/* Quiet tone with full-scale clicks: reaching the loudness target needs
 * ~16 dB of gain, so only a limiter (not a whole-track gain) can meet both
 * the loudness and the peak limit. */
static void
test_master_limits_peaks(void **state)
{
    (void)state;
    rf_narration n = {0};
    n.frames = (size_t)RF_AUDIO_RATE * 4;
    n.pcm = calloc(n.frames * 2, sizeof(float));
    assert_non_null(n.pcm);
    for (size_t i = 0; i < n.frames; i++) {
        float s = 0.05f * (float)sin(2.0 * M_PI * 220.0 * (double)i / RF_AUDIO_RATE);
        if (i % (RF_AUDIO_RATE / 4) < 24)
            s = 1.0f;
        n.pcm[2 * i] = n.pcm[2 * i + 1] = s;
    }
    double l0 = 0, tp0 = 0;
    assert_int_equal(rf_audio_measure(n.pcm, n.frames, &l0, &tp0), RF_OK);
    assert_true(tp0 > -0.5 && l0 < -20.0); /* the premise of the test */
    float *pcm = NULL;
    double lufs = 0, tp = 0;
    assert_int_equal(rf_audio_master(&n, 0, n.frames, -14.0, -1.0, &pcm, &lufs, &tp), RF_OK);
    print_message("clicks: %.2f LUFS/%.2f dBTP -> %.2f LUFS/%.2f dBTP\n", l0, tp0, lufs, tp);
    assert_true(fabs(lufs - -14.0) <= 1.0);
    assert_true(tp <= -1.0);
    free(pcm);
    free(n.pcm);
}

static size_t
utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* Invariants every caption list must satisfy for the words it came from. */
static void
check_captions(const char *script, const rf_word *w, size_t nw, const rf_caption *c, int nc,
               int max_chars, int64_t off)
{
    assert_true(nc > 0);
    size_t wi = 0;
    for (int k = 0; k < nc; k++) {
        assert_non_null(c[k].text);
        assert_true(c[k].end_ms > c[k].start_ms);
        if (k + 1 < nc)
            assert_true(c[k].end_ms <= c[k + 1].start_ms);
        assert_int_equal(c[k].start_ms, w[wi].start_ms + off);
        /* The caption holds its words, in order, as script text. */
        const char *at = c[k].text;
        size_t words_here = 0;
        while (wi < nw) {
            char word[64] = {0};
            memcpy(word, script + w[wi].text_start, w[wi].text_len);
            const char *f = strstr(at, word);
            if (f == NULL)
                break;
            at = f + w[wi].text_len;
            wi++;
            words_here++;
        }
        assert_true(words_here > 0);
        assert_true(utf8_len(c[k].text) <= (size_t)max_chars || words_here == 1);
        /* No sentence end inside a caption. */
        for (const char *p = c[k].text; *p; p++)
            if ((*p == '.' || *p == '!' || *p == '?') && p[1] == ' ')
                fail_msg("sentence end inside caption \"%s\"", c[k].text);
        const char *cj = strstr(c[k].text, "。");
        if (cj != NULL && cj[3] != '\0')
            fail_msg("sentence end inside caption \"%s\"", c[k].text);
        /* No leading or trailing space. */
        size_t len = strlen(c[k].text);
        assert_true(len > 0 && c[k].text[0] != ' ' && c[k].text[len - 1] != ' ');
    }
    assert_int_equal(wi, nw);
}

/* Words for a script split at spaces, 300 ms apart. */
static size_t
fake_words(const char *script, rf_word *w, size_t max)
{
    size_t n = 0, i = 0, len = strlen(script);
    while (i < len && n < max) {
        while (i < len && script[i] == ' ')
            i++;
        size_t s = i;
        while (i < len && script[i] != ' ')
            i++;
        size_t e = i;
        while (e > s && strchr(".!?,", script[e - 1]) != NULL)
            e--; /* espeak leaves punctuation out of the word */
        if (e > s) {
            w[n] =
                (rf_word){(uint32_t)s, (uint32_t)(e - s), (int64_t)n * 300, (int64_t)n * 300 + 300};
            n++;
        }
    }
    return n;
}

static void
test_captions_exact(void **state)
{
    (void)state;
    const char *s = "One two three. Four five six seven eight nine ten eleven.";
    rf_word w[32];
    size_t nw = fake_words(s, w, 32);
    assert_int_equal(nw, 11);
    rf_caption *c = NULL;
    int nc = 0;
    assert_int_equal(rf_captions_build(s, w, nw, 20, 1000, &c, &nc), RF_OK);
    static const char *const expect[] = {"One two three.", "Four five six seven", "eight nine ten",
                                         "eleven."};
    assert_int_equal(nc, 4);
    for (int k = 0; k < nc; k++)
        assert_string_equal(c[k].text, expect[k]);
    assert_int_equal(c[0].start_ms, 1000);
    assert_int_equal(c[0].end_ms, 1000 + 3 * 300); /* next caption's first word */
    assert_int_equal(c[3].start_ms, 1000 + 10 * 300);
    assert_true(c[3].end_ms > w[10].end_ms + 1000);
    check_captions(s, w, nw, c, nc, 20, 1000);
    rf_captions_free(c, nc);

    /* A single word longer than max_chars stays whole, alone. */
    const char *l = "a supercalifragilistic word";
    nw = fake_words(l, w, 32);
    assert_int_equal(rf_captions_build(l, w, nw, 8, 0, &c, &nc), RF_OK);
    assert_int_equal(nc, 3);
    assert_string_equal(c[1].text, "supercalifragilistic");
    rf_captions_free(c, nc);

    /* "3.5" is not a sentence end. */
    const char *d = "Pi is 3.5 or so";
    nw = fake_words(d, w, 32);
    assert_int_equal(rf_captions_build(d, w, nw, 40, 0, &c, &nc), RF_OK);
    assert_int_equal(nc, 1);
    assert_string_equal(c[0].text, d);
    rf_captions_free(c, nc);

    assert_int_equal(rf_captions_build(s, w, nw, 0, 0, &c, &nc), RF_EINVAL);
    rf_captions_free(NULL, 0);
}

static void
test_captions_cjk(void **state)
{
    (void)state;
    /* One word per character, as espeak-ng reports Chinese; 3 bytes each. */
    const char *s = "你好世界。今天天气很好。";
    rf_word w[16];
    size_t nw = 0;
    for (size_t off = 0; off < strlen(s); off += 3) {
        if (memcmp(s + off, "。", 3) == 0)
            continue;
        w[nw] = (rf_word){(uint32_t)off, 3, (int64_t)nw * 250, (int64_t)nw * 250 + 250};
        nw++;
    }
    rf_caption *c = NULL;
    int nc = 0;
    assert_int_equal(rf_captions_build(s, w, nw, 16, 0, &c, &nc), RF_OK);
    assert_int_equal(nc, 2);
    assert_string_equal(c[0].text, "你好世界。");
    assert_string_equal(c[1].text, "今天天气很好。");
    check_captions(s, w, nw, c, nc, 16, 0);
    rf_captions_free(c, nc);
    /* max_chars counts characters, not bytes: 4 per caption. */
    assert_int_equal(rf_captions_build(s, w, nw, 4, 0, &c, &nc), RF_OK);
    for (int k = 0; k < nc; k++)
        assert_true(utf8_len(c[k].text) <= 4);
    rf_captions_free(c, nc);
}

static void
test_captions_from_speech(void **state)
{
    (void)state;
    const char *s = "Welcome to the show! Today we build a render farm for bulk video. "
                    "It renders hundreds of videos at once? Yes, and it captions them too.";
    rf_narration n = {0};
    assert_int_equal(rf_narration_synth(s, "neutral", 1.2, 0.0, &n, NULL, 0), RF_OK);
    rf_caption *c = NULL;
    int nc = 0;
    assert_int_equal(rf_captions_build(s, n.words, n.n_words, 28, 2500, &c, &nc), RF_OK);
    check_captions(s, n.words, n.n_words, c, nc, 28, 2500);
    /* Sentence ends close their caption. */
    bool ends_show = false;
    for (int k = 0; k < nc; k++)
        ends_show |=
            strlen(c[k].text) >= 5 && strcmp(c[k].text + strlen(c[k].text) - 5, "show!") == 0;
    assert_true(ends_show);
    rf_captions_free(c, nc);
    rf_narration_free(&n);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synth_hello),         cmocka_unit_test(test_voices_differ),
        cmocka_unit_test(test_speed_and_pitch),     cmocka_unit_test(test_utf8_offsets),
        cmocka_unit_test(test_empty_script),        cmocka_unit_test(test_master_loudness),
        cmocka_unit_test(test_master_limits_peaks), cmocka_unit_test(test_captions_exact),
        cmocka_unit_test(test_captions_cjk),        cmocka_unit_test(test_captions_from_speech),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
