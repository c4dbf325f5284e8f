/* Narration: espeak-ng synthesis with word timing, captions grouped from that
 * timing, and the loudness-normalised master track (EBU R128 via libebur128).
 *
 * espeak-ng keeps its voice, rate and pitch in process-wide state, so every
 * synthesis runs under one mutex and sets all of its parameters afresh. The
 * samples and events reach us through the synth callback, whose context
 * travels in the events' user_data (no static "current job" pointer). */
#include "audio.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ebur128.h>
#include <espeak-ng/speak_lib.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libswresample/swresample.h>

#include "rf_log.h"
#include "rf_util.h"

/* Samples quieter than this (16-bit) count as silence when trimming the
 * tail: about -54 dBFS, well under speech but above espeak's dither. */
#define RF_SILENCE_S16 64
/* Keep a little of the decay after the last loud sample. */
#define RF_TAIL_KEEP_MS 30
/* How long the last caption stays up after its last word. */
#define RF_CAPTION_HOLD_MS 300
/* Limiter: look-ahead so gain is already down when a peak arrives, and a
 * slow release so the gain does not pump audibly between syllables. */
#define RF_LIMIT_LOOKAHEAD_MS 5
#define RF_LIMIT_RELEASE_MS 80
#define RF_MASTER_MAX_ITER 5

/* --- espeak-ng: one-time initialisation ------------------------------- */

static pthread_once_t rf_espeak_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t rf_espeak_lock = PTHREAD_MUTEX_INITIALIZER;
/* Written once inside pthread_once, read-only afterwards. */
static int rf_espeak_rate;

typedef struct rf_synth_event {
    int char_pos; /* 1-based character position in the script */
    int char_len;
    int ms;
} rf_synth_event;

/* What the callback collects for one synthesis. */
typedef struct rf_synth_ctx {
    int16_t *pcm;
    size_t n, cap;
    rf_synth_event *ev;
    size_t n_ev, cap_ev;
    bool oom;
} rf_synth_ctx;

static int
rf_synth_cb(short *wav, int numsamples, espeak_EVENT *events)
{
    rf_synth_ctx *ctx = events ? events[0].user_data : NULL;
    if (ctx == NULL || ctx->oom)
        return ctx ? 1 : 0;
    if (wav != NULL && numsamples > 0) {
        if (ctx->n + (size_t)numsamples > ctx->cap) {
            size_t cap = ctx->cap ? ctx->cap * 2 : 65536;
            while (cap < ctx->n + (size_t)numsamples)
                cap *= 2;
            int16_t *p = realloc(ctx->pcm, cap * sizeof(*p));
            if (p == NULL) {
                ctx->oom = true;
                return 1; /* non-zero aborts synthesis */
            }
            ctx->pcm = p;
            ctx->cap = cap;
        }
        memcpy(ctx->pcm + ctx->n, wav, (size_t)numsamples * sizeof(*wav));
        ctx->n += (size_t)numsamples;
    }
    for (espeak_EVENT *e = events; e->type != espeakEVENT_LIST_TERMINATED; e++) {
        if (e->type != espeakEVENT_WORD)
            continue;
        if (ctx->n_ev == ctx->cap_ev) {
            size_t cap = ctx->cap_ev ? ctx->cap_ev * 2 : 256;
            rf_synth_event *p = realloc(ctx->ev, cap * sizeof(*p));
            if (p == NULL) {
                ctx->oom = true;
                return 1;
            }
            ctx->ev = p;
            ctx->cap_ev = cap;
        }
        ctx->ev[ctx->n_ev++] = (rf_synth_event){e->text_position, e->length, e->audio_position};
    }
    return 0;
}

static void
rf_espeak_init(void)
{
    /* DONT_EXIT: a missing data directory must be an error, not exit(). */
    int rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, NULL, espeakINITIALIZE_DONT_EXIT);
    if (rate <= 0)
        return;
    espeak_SetSynthCallback(rf_synth_cb);
    rf_espeak_rate = rate;
}

/* --- voices and languages --------------------------------------------- */

/* The requested voice as an espeak-ng variant. The neutral voice is a
 * female variant lowered by a few semitones, which lands its pitch between
 * the male (~110 Hz) and female (~195 Hz) voices. */
typedef struct rf_voice_def {
    const char *name;
    const char *variant; /* "+variant" appended to the language, or NULL */
    double pitch_bias;   /* semitones added to the caller's pitch */
    bool rp_accent;      /* English only: use Received Pronunciation */
} rf_voice_def;

static const rf_voice_def rf_voices[] = {
    {"female", "f3", 0.0, false},
    {"male", NULL, 0.0, false},
    {"neutral", "f4", -3.0, true},
};

/* Scripts whose text an English voice would only spell letter by letter:
 * the dominant script picks the espeak-ng language instead. */
typedef struct rf_script_lang {
    uint32_t lo, hi;
    const char *lang;
} rf_script_lang;

static const rf_script_lang rf_script_langs[] = {
    {0x0370, 0x03FF, "el"}, {0x0400, 0x04FF, "ru"},  {0x0590, 0x05FF, "he"},
    {0x0600, 0x06FF, "ar"}, {0x0900, 0x097F, "hi"},  {0x0E00, 0x0E7F, "th"},
    {0x3040, 0x30FF, "ja"}, {0x3400, 0x4DBF, "cmn"}, {0x4E00, 0x9FFF, "cmn"},
    {0xAC00, 0xD7AF, "ko"},
};

/* Decodes one UTF-8 sequence at s[0..len). Returns its length (1..4) and the
 * code point, or 0 when the bytes there are not valid UTF-8. */
static int
rf_utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char c = s[0];
    int n;
    uint32_t v;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)n > len)
        return 0;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    /* Overlong forms, surrogates and values past U+10FFFF. */
    if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
        (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

static const char *
rf_pick_language(const char *text, size_t len)
{
    size_t latin = 0, counts[sizeof(rf_script_langs) / sizeof(rf_script_langs[0])] = {0};
    size_t kana = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int n = rf_utf8_next((const unsigned char *)text + i, len - i, &cp);
        if (n == 0) {
            i++;
            continue;
        }
        i += (size_t)n;
        if ((cp < 0x80 && isalpha((int)cp)) || (cp >= 0xC0 && cp <= 0x24F)) {
            latin++;
            continue;
        }
        for (size_t k = 0; k < sizeof(rf_script_langs) / sizeof(rf_script_langs[0]); k++) {
            if (cp >= rf_script_langs[k].lo && cp <= rf_script_langs[k].hi) {
                counts[k]++;
                if (strcmp(rf_script_langs[k].lang, "ja") == 0)
                    kana++;
                break;
            }
        }
    }
    const char *best = NULL;
    size_t best_n = latin;
    for (size_t k = 0; k < sizeof(rf_script_langs) / sizeof(rf_script_langs[0]); k++) {
        /* Japanese text is mostly kanji; any kana marks it as Japanese. */
        size_t c = counts[k];
        if (strcmp(rf_script_langs[k].lang, "cmn") == 0 && kana > 0)
            continue;
        if (strcmp(rf_script_langs[k].lang, "ja") == 0 && kana > 0) {
            for (size_t h = 0; h < sizeof(rf_script_langs) / sizeof(rf_script_langs[0]); h++)
                if (strcmp(rf_script_langs[h].lang, "cmn") == 0)
                    c += counts[h];
        }
        if (c > best_n) {
            best_n = c;
            best = rf_script_langs[k].lang;
        }
    }
    return best; /* NULL: English */
}

/* --- synthesis ---------------------------------------------------------- */

/* Resamples mono 16-bit at in_rate to mono float at RF_AUDIO_RATE. */
static rf_err
rf_resample(const int16_t *in, size_t n_in, int in_rate, float **out, size_t *n_out, char *err,
            size_t err_len)
{
    rf_err rv = RF_OK;
    SwrContext *swr = NULL;
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    float *buf = NULL;
    *out = NULL;
    *n_out = 0;
    if (n_in > (size_t)INT32_MAX) {
        rf_errf(err, err_len, "narration too long to resample");
        return RF_EAUDIO;
    }
    int r = swr_alloc_set_opts2(&swr, &mono, AV_SAMPLE_FMT_FLT, RF_AUDIO_RATE, &mono,
                                AV_SAMPLE_FMT_S16, in_rate, 0, NULL);
    if (r >= 0)
        r = swr_init(swr);
    if (r < 0) {
        rf_errf(err, err_len, "resampler setup failed: %s", av_err2str(r));
        rv = RF_EAUDIO;
        goto out;
    }
    size_t cap = (size_t)av_rescale_rnd((int64_t)n_in, RF_AUDIO_RATE, in_rate, AV_ROUND_UP) + 256;
    buf = malloc(cap * sizeof(*buf));
    if (buf == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    uint8_t *op = (uint8_t *)buf;
    const uint8_t *ip = (const uint8_t *)in;
    int got = swr_convert(swr, &op, (int)cap, &ip, (int)n_in);
    if (got >= 0) {
        op = (uint8_t *)(buf + got);
        int tail = swr_convert(swr, &op, (int)(cap - (size_t)got), NULL, 0);
        got = tail < 0 ? tail : got + tail;
    }
    if (got < 0) {
        rf_errf(err, err_len, "resampling failed: %s", av_err2str(got));
        rv = RF_EAUDIO;
        goto out;
    }
    *out = buf;
    *n_out = (size_t)got;
    buf = NULL;
out:
    free(buf);
    swr_free(&swr);
    return rv;
}

/* Copies the script with every byte that is not valid UTF-8 (and every
 * control character) replaced by a space: byte offsets stay the same and
 * espeak-ng's character count matches ours. */
static char *
rf_sanitize_script(const char *script, size_t len)
{
    char *s = malloc(len + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, script, len + 1);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int n = rf_utf8_next((const unsigned char *)s + i, len - i, &cp);
        if (n == 0 || cp < 0x20 || cp == 0x7F) {
            s[i++] = ' ';
            continue;
        }
        i += (size_t)n;
    }
    return s;
}

static bool
rf_is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isspace((unsigned char)s[i]))
            return false;
    return true;
}

/* Letters, digits and ideographs; not spaces, punctuation or symbols. */
static bool
rf_is_wordish(uint32_t cp)
{
    if (cp < 0x80)
        return isalnum((int)cp) != 0;
    return !(cp <= 0xBF || (cp >= 0x2000 && cp <= 0x2BFF) || (cp >= 0x3000 && cp <= 0x303F) ||
             (cp >= 0xFF01 && cp <= 0xFF0F) || (cp >= 0xFF1A && cp <= 0xFF20) ||
             (cp >= 0xFE30 && cp <= 0xFE4F) || cp == 0x061F || cp == 0x060C || cp == 0x06D4 ||
             cp == 0x0964 || cp == 0x0965);
}

/* Finds the next whitespace-separated token in s[*i, to) trimmed to its word
 * characters ("(hello)," -> "hello"); false when none is left. */
static bool
rf_next_token(const char *s, size_t *i, size_t to, size_t *t0, size_t *t1)
{
    while (*i < to) {
        while (*i < to && isspace((unsigned char)s[*i]))
            (*i)++;
        size_t a = *i;
        while (*i < to && !isspace((unsigned char)s[*i]))
            (*i)++;
        size_t first = SIZE_MAX, end = 0;
        for (size_t k = a; k < *i;) {
            uint32_t cp = 0;
            int n = rf_utf8_next((const unsigned char *)s + k, *i - k, &cp);
            n = n > 0 ? n : 1;
            if (rf_is_wordish(cp)) {
                first = first == SIZE_MAX ? k : first;
                end = k + (size_t)n;
            }
            k += (size_t)n;
        }
        if (first != SIZE_MAX) {
            *t0 = first;
            *t1 = end;
            return true;
        }
    }
    return false;
}

/* espeak-ng sends one word event for some word groups ("of the"), so words
 * of the script can lack an event. Every such word is put back, timed by
 * sharing the time to the next event in proportion to character counts;
 * then each word ends where the next starts (the last at speech end). The
 * result covers every word of the script, in order. */
static rf_err
rf_fill_words(const char *s, size_t len, const rf_word *sp, size_t n_sp, int64_t end_ms,
              rf_word **out, size_t *n_out)
{
    size_t tokens = 0, i = 0, t0, t1;
    while (rf_next_token(s, &i, len, &t0, &t1))
        tokens++;
    rf_word *w = calloc(n_sp + tokens + 1, sizeof(*w));
    if (w == NULL)
        return RF_ENOMEM;
    size_t nw = 0, pos = 0;
    for (size_t k = 0; k <= n_sp; k++) {
        size_t gap_to = k < n_sp ? sp[k].text_start : len;
        int64_t ta = k == 0 ? (n_sp ? sp[0].start_ms : 0) : sp[k - 1].start_ms;
        int64_t tb = k == 0 ? ta : k < n_sp ? sp[k].start_ms : end_ms;
        size_t lead = k == 0 ? 0 : rf_utf8_chars(s + sp[k - 1].text_start, sp[k - 1].text_len);
        size_t total = lead;
        i = pos;
        while (i < gap_to && rf_next_token(s, &i, gap_to, &t0, &t1))
            total += rf_utf8_chars(s + t0, t1 - t0);
        size_t before = lead;
        i = pos;
        while (i < gap_to && rf_next_token(s, &i, gap_to, &t0, &t1)) {
            int64_t t = ta + (total ? (tb - ta) * (int64_t)before / (int64_t)total : 0);
            w[nw++] = (rf_word){(uint32_t)t0, (uint32_t)(t1 - t0), t, 0};
            before += rf_utf8_chars(s + t0, t1 - t0);
        }
        if (k < n_sp) {
            w[nw++] = sp[k];
            /* The rest of the word's own run ("world's" read as one) is
             * part of it, not a missed word. */
            pos = (size_t)sp[k].text_start + sp[k].text_len;
            while (pos < len && !isspace((unsigned char)s[pos]))
                pos++;
        }
    }
    for (size_t k = 0; k < nw; k++)
        w[k].end_ms = k + 1 < nw ? w[k + 1].start_ms : end_ms;
    *out = w;
    *n_out = nw;
    return RF_OK;
}

rf_err
rf_narration_synth(const char *script, const char *voice, double speed, double pitch,
                   rf_narration *out, char *err, size_t err_len)
{
    rf_err rv = RF_OK;
    rf_synth_ctx ctx = {0};
    char *text = NULL;
    size_t *char_off = NULL;
    float *mono = NULL;
    rf_narration n = {0};
    rf_word *spoken = NULL;
    bool locked = false;

    if (out == NULL)
        return RF_EINVAL;
    memset(out, 0, sizeof(*out));
    if (err != NULL && err_len > 0)
        err[0] = '\0';
    if (script == NULL || rf_is_blank(script, strlen(script))) {
        rf_errf(err, err_len, "script is empty: nothing to narrate");
        return RF_EAUDIO;
    }
    size_t len = strlen(script);
    if (len > (size_t)INT32_MAX / 2) {
        rf_errf(err, err_len, "script too long to narrate");
        return RF_EAUDIO;
    }

    const rf_voice_def *vd = &rf_voices[0];
    for (size_t i = 0; voice != NULL && i < sizeof(rf_voices) / sizeof(rf_voices[0]); i++)
        if (strcmp(voice, rf_voices[i].name) == 0)
            vd = &rf_voices[i];
    if (!(speed >= 0.5)) /* also catches NaN */
        speed = speed > 0 ? 0.5 : 1.0;
    if (speed > 2.0)
        speed = 2.0;
    if (!isfinite(pitch))
        pitch = 0.0;

    text = rf_sanitize_script(script, len);
    if (text == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    /* espeak-ng reports 1-based character positions; map them to bytes. */
    char_off = malloc((len + 2) * sizeof(*char_off));
    if (char_off == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    size_t n_chars = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = rf_utf8_next((const unsigned char *)text + i, len - i, &cp);
        char_off[n_chars++] = i;
        i += (size_t)(k > 0 ? k : 1);
    }
    char_off[n_chars] = len;

    char voice_name[64];
    const char *lang = rf_pick_language(text, len);
    if (lang == NULL)
        lang = vd->rp_accent ? "en-gb-x-rp" : "en-us";
    snprintf(voice_name, sizeof(voice_name), "%s%s%s", lang, vd->variant ? "+" : "",
             vd->variant ? vd->variant : "");

    pthread_once(&rf_espeak_once, rf_espeak_init);
    if (rf_espeak_rate <= 0) {
        rf_errf(err, err_len, "espeak-ng failed to initialise (is espeak-ng-data installed?)");
        rv = RF_EAUDIO;
        goto out;
    }

    /* espeak-ng's pitch parameter (0..100, 50 = the voice's own) spans about
     * 6.5 semitones either way, ~7 units per semitone; beyond that clamp. */
    int p = (int)lround(50.0 + (pitch + vd->pitch_bias) * 7.0);
    p = p < 0 ? 0 : p > 100 ? 100 : p;
    int rate = (int)lround(175.0 * speed);
    rate = rate < espeakRATE_MINIMUM ? espeakRATE_MINIMUM : rate;
    rate = rate > espeakRATE_MAXIMUM ? espeakRATE_MAXIMUM : rate;

    pthread_mutex_lock(&rf_espeak_lock);
    locked = true;
    if (espeak_SetVoiceByName(voice_name) != EE_OK) {
        rf_errf(err, err_len, "espeak-ng has no voice %s", voice_name);
        rv = RF_EAUDIO;
        goto out;
    }
    espeak_SetParameter(espeakRATE, rate, 0);
    espeak_SetParameter(espeakPITCH, p, 0);
    espeak_SetParameter(espeakRANGE, 50, 0);
    espeak_SetParameter(espeakVOLUME, 100, 0);
    espeak_SetParameter(espeakPUNCTUATION, espeakPUNCT_NONE, 0);
    espeak_SetParameter(espeakCAPITALS, 0, 0);
    /* Plain UTF-8 text: no SSML or phoneme flags, so '<' or "[[" are read
     * as text, never as markup. */
    espeak_ERROR er =
        espeak_Synth(text, len + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, NULL, &ctx);
    pthread_mutex_unlock(&rf_espeak_lock);
    locked = false;
    if (ctx.oom) {
        rv = RF_ENOMEM;
        goto out;
    }
    if (er != EE_OK) {
        rf_errf(err, err_len, "espeak-ng synthesis failed (error %d)", (int)er);
        rv = RF_EAUDIO;
        goto out;
    }

    /* Trim trailing silence so the last word ends where speech ends. */
    size_t end = ctx.n;
    while (end > 0 && abs(ctx.pcm[end - 1]) <= RF_SILENCE_S16)
        end--;
    if (end == 0) {
        rf_errf(err, err_len, "speech synthesis produced no audible speech for the script");
        rv = RF_EAUDIO;
        goto out;
    }
    end += (size_t)rf_espeak_rate * RF_TAIL_KEEP_MS / 1000;
    if (end > ctx.n)
        end = ctx.n;
    int64_t speech_end_ms = (int64_t)end * 1000 / rf_espeak_rate;

    /* Words: espeak-ng repeats the position when it spells a word letter by
     * letter (or reads an emoji's name), so keep only the first event of each
     * position and drop ranges that are only whitespace. */
    spoken = calloc(ctx.n_ev ? ctx.n_ev : 1, sizeof(*spoken));
    if (spoken == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    size_t n_spoken = 0, last_pos = 0;
    for (size_t i = 0; i < ctx.n_ev; i++) {
        const rf_synth_event *e = &ctx.ev[i];
        if (e->char_pos < 1 || (size_t)e->char_pos > n_chars || e->char_len < 1)
            continue;
        size_t c0 = (size_t)e->char_pos - 1;
        size_t c1 = c0 + (size_t)e->char_len;
        if (c1 > n_chars)
            c1 = n_chars;
        size_t b0 = char_off[c0], b1 = char_off[c1];
        while (b0 < b1 && isspace((unsigned char)text[b0]))
            b0++;
        while (b1 > b0 && isspace((unsigned char)text[b1 - 1]))
            b1--;
        if (b0 == b1 || (n_spoken > 0 && b0 < last_pos))
            continue;
        int64_t ms = e->ms;
        if (n_spoken > 0 && ms < spoken[n_spoken - 1].start_ms)
            ms = spoken[n_spoken - 1].start_ms;
        if (ms > speech_end_ms)
            ms = speech_end_ms;
        spoken[n_spoken++] = (rf_word){(uint32_t)b0, (uint32_t)(b1 - b0), ms, 0};
        last_pos = b1;
    }
    rv = rf_fill_words(text, len, spoken, n_spoken, speech_end_ms, &n.words, &n.n_words);
    if (rv != RF_OK)
        goto out;

    size_t n_mono = 0;
    rv = rf_resample(ctx.pcm, end, rf_espeak_rate, &mono, &n_mono, err, err_len);
    if (rv != RF_OK)
        goto out;
    n.pcm = malloc((n_mono ? n_mono : 1) * RF_AUDIO_CHANNELS * sizeof(*n.pcm));
    if (n.pcm == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n_mono; i++)
        for (int c = 0; c < RF_AUDIO_CHANNELS; c++)
            n.pcm[i * RF_AUDIO_CHANNELS + (size_t)c] = mono[i];
    n.frames = n_mono;
    rf_debug("narration: voice %s rate %d pitch %d, %zu words, %.2f s", voice_name, rate, p,
             n.n_words, (double)n_mono / RF_AUDIO_RATE);
    *out = n;
    memset(&n, 0, sizeof(n));
out:
    if (locked)
        pthread_mutex_unlock(&rf_espeak_lock);
    if (rv == RF_ENOMEM && err != NULL && err_len > 0 && err[0] == '\0')
        rf_errf(err, err_len, "out of memory during speech synthesis");
    rf_narration_free(&n);
    free(mono);
    free(ctx.pcm);
    free(ctx.ev);
    free(spoken);
    free(char_off);
    free(text);
    return rv;
}

void
rf_narration_free(rf_narration *n)
{
    if (n == NULL)
        return;
    free(n->pcm);
    free(n->words);
    memset(n, 0, sizeof(*n));
}

/* --- captions ------------------------------------------------------------ */

static bool
rf_is_sentence_end_cp(uint32_t cp, bool *needs_space)
{
    *needs_space = cp < 0x80;
    switch (cp) {
    case '.':
    case '!':
    case '?':
    case 0x2026: /* … */
    case 0x203C: /* ‼ */
    case 0x2047: /* ⁇ */
    case 0x2048: /* ⁈ */
    case 0x2049: /* ⁉ */
    case 0x3002: /* 。 */
    case 0xFF01: /* ！ */
    case 0xFF0E: /* ． */
    case 0xFF1F: /* ？ */
    case 0xFF61: /* ｡ */
    case 0x061F: /* ؟ */
    case 0x06D4: /* ۔ */
    case 0x0964: /* । */
    case 0x0965: /* ॥ */
        return true;
    default:
        return false;
    }
}

/* Does the text between a word and the next one end a sentence? ASCII
 * terminators count only when whitespace or the end of the script follows
 * them ("3.5", "e.g" do not end sentences); CJK and other full-width
 * terminators need no space. */
static bool
rf_gap_ends_sentence(const char *s, size_t from, size_t to, bool at_script_end)
{
    for (size_t i = from; i < to;) {
        uint32_t cp;
        int n = rf_utf8_next((const unsigned char *)s + i, to - i, &cp);
        if (n == 0) {
            i++;
            continue;
        }
        i += (size_t)n;
        bool needs_space;
        if (!rf_is_sentence_end_cp(cp, &needs_space))
            continue;
        if (!needs_space || at_script_end)
            return true;
        for (size_t k = i; k < to; k++)
            if (isspace((unsigned char)s[k]))
                return true;
    }
    return false;
}

static void
rf_trim(const char *s, size_t *b0, size_t *b1)
{
    while (*b0 < *b1 && isspace((unsigned char)s[*b0]))
        (*b0)++;
    while (*b1 > *b0 && isspace((unsigned char)s[*b1 - 1]))
        (*b1)--;
}

rf_err
rf_captions_build(const char *script, const rf_word *words, size_t n_words, int max_chars,
                  int64_t offset_ms, rf_caption **out, int *n_out)
{
    rf_err rv = RF_OK;
    rf_caption *caps = NULL;
    size_t *span_end = NULL;
    int n_caps = 0;

    if (out == NULL || n_out == NULL)
        return RF_EINVAL;
    *out = NULL;
    *n_out = 0;
    if (script == NULL || (words == NULL && n_words > 0) || max_chars <= 0 ||
        n_words > (size_t)INT32_MAX)
        return RF_EINVAL;
    if (n_words == 0)
        return RF_OK;
    size_t len = strlen(script);
    for (size_t i = 0; i < n_words; i++) {
        const rf_word *w = &words[i];
        if ((size_t)w->text_start + w->text_len > len || w->end_ms < w->start_ms ||
            (i > 0 &&
             (w->text_start < words[i - 1].text_start || w->start_ms < words[i - 1].start_ms)))
            return RF_EINVAL;
    }

    /* Each word's text reaches over the punctuation glued to it ("world."),
     * up to the first space or the next word. */
    span_end = malloc(n_words * sizeof(*span_end));
    caps = calloc(n_words, sizeof(*caps));
    if (span_end == NULL || caps == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n_words; i++) {
        size_t e = (size_t)words[i].text_start + words[i].text_len;
        size_t limit = i + 1 < n_words ? words[i + 1].text_start : len;
        while (e < limit && !isspace((unsigned char)script[e]))
            e++;
        span_end[i] = e;
    }

    for (size_t i = 0; i < n_words;) {
        size_t j = i;
        for (;;) {
            size_t gap_to = j + 1 < n_words ? words[j + 1].text_start : len;
            if (gap_to < span_end[j])
                gap_to = span_end[j];
            if (rf_gap_ends_sentence(script, words[j].text_start + words[j].text_len, gap_to,
                                     j + 1 == n_words) ||
                j + 1 == n_words)
                break;
            size_t b0 = words[i].text_start, b1 = span_end[j + 1];
            rf_trim(script, &b0, &b1);
            /* A caption that would start when the previous one does could
             * never be shown: keep such words together regardless of length. */
            if (rf_utf8_chars(script + b0, b1 - b0) > (size_t)max_chars &&
                words[j + 1].start_ms > words[i].start_ms)
                break;
            j++;
        }
        size_t b0 = words[i].text_start, b1 = span_end[j];
        rf_trim(script, &b0, &b1);
        rf_caption *c = &caps[n_caps];
        c->text = malloc(b1 - b0 + 1);
        if (c->text == NULL) {
            rv = RF_ENOMEM;
            goto out;
        }
        memcpy(c->text, script + b0, b1 - b0);
        c->text[b1 - b0] = '\0';
        c->start_ms = words[i].start_ms + offset_ms;
        c->end_ms = j + 1 < n_words ? words[j + 1].start_ms + offset_ms
                                    : words[j].end_ms + RF_CAPTION_HOLD_MS + offset_ms;
        n_caps++;
        i = j + 1;
    }
    *out = caps;
    *n_out = n_caps;
    caps = NULL;
out:
    rf_captions_free(caps, n_caps);
    free(span_end);
    return rv;
}

void
rf_captions_free(rf_caption *caps, int n)
{
    if (caps == NULL)
        return;
    for (int i = 0; i < n; i++)
        free(caps[i].text);
    free(caps);
}

/* --- loudness ------------------------------------------------------------ */

rf_err
rf_audio_measure(const float *pcm, size_t frames, double *lufs, double *tp)
{
    rf_err rv = RF_OK;
    if (pcm == NULL && frames > 0)
        return RF_EINVAL;
    /* True peak needs 4x oversampling: only pay for it when asked. */
    ebur128_state *st = ebur128_init(RF_AUDIO_CHANNELS, RF_AUDIO_RATE,
                                     EBUR128_MODE_I | (tp ? EBUR128_MODE_TRUE_PEAK : 0));
    if (st == NULL)
        return RF_ENOMEM;
    /* Feed in blocks: the library's frame count is a size_t but large single
     * calls gain nothing and keep its internal buffers busy longer. */
    const size_t block = (size_t)RF_AUDIO_RATE;
    for (size_t i = 0; i < frames; i += block) {
        size_t n = frames - i < block ? frames - i : block;
        if (ebur128_add_frames_float(st, pcm + i * RF_AUDIO_CHANNELS, n) != EBUR128_SUCCESS) {
            rv = RF_EAUDIO;
            goto out;
        }
    }
    double l = -HUGE_VAL, peak = 0.0;
    if (ebur128_loudness_global(st, &l) != EBUR128_SUCCESS) {
        rv = RF_EAUDIO;
        goto out;
    }
    for (unsigned c = 0; tp != NULL && c < RF_AUDIO_CHANNELS; c++) {
        double p = 0.0;
        if (ebur128_true_peak(st, c, &p) != EBUR128_SUCCESS) {
            rv = RF_EAUDIO;
            goto out;
        }
        if (p > peak)
            peak = p;
    }
    if (lufs != NULL)
        *lufs = l;
    if (tp != NULL)
        *tp = peak > 0.0 ? 20.0 * log10(peak) : -HUGE_VAL;
out:
    ebur128_destroy(&st);
    return rv;
}

/* Gain curve that keeps every sample of x (n frames, interleaved stereo,
 * scaled by gain) at or under ceiling. For each frame the required gain is
 * min(1, ceiling / peak); a sliding minimum over the next `la` frames starts
 * the reduction before the peak, a box average over la + 1 frames turns the
 * steps into ramps (still at or under the requirement, since every value in
 * the box is a minimum over a window containing the current frame), and a
 * one-pole release lets the gain recover smoothly. */
static rf_err
rf_limiter_gain(const float *x, size_t n, double gain, double ceiling, float *g)
{
    const size_t la = (size_t)RF_AUDIO_RATE * RF_LIMIT_LOOKAHEAD_MS / 1000;
    const double rel = 1.0 - exp(-1.0 / (RF_AUDIO_RATE * RF_LIMIT_RELEASE_MS / 1000.0));
    size_t *dq = malloc((la + 2) * sizeof(*dq));
    float *req = malloc((n ? n : 1) * sizeof(*req));
    float *m = malloc((n ? n : 1) * sizeof(*m));
    if (dq == NULL || req == NULL || m == NULL) {
        free(dq);
        free(req);
        free(m);
        return RF_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        double p = fmax(fabs(x[2 * i]), fabs(x[2 * i + 1])) * gain;
        req[i] = p > ceiling ? (float)(ceiling / p) : 1.0f;
    }
    /* m[i] = min(req[i .. i + la]) with a monotonic deque of indices kept in
     * a ring of la + 2 slots (it never holds more than la + 1). */
    size_t cap = la + 2, head = 0, count = 0;
    for (size_t j = 0; j < n + la; j++) {
        if (j < n) {
            while (count > 0 && req[dq[(head + count - 1) % cap]] >= req[j])
                count--;
            dq[(head + count) % cap] = j;
            count++;
        }
        if (j >= la) {
            size_t i = j - la;
            while (dq[head] < i) {
                head = (head + 1) % cap;
                count--;
            }
            m[i] = req[dq[head]];
        }
    }
    /* Box average of m over [i - la, i]; frames before the start repeat m[0],
     * whose window also covers them, so the bound still holds. */
    double sum = (double)(la + 1) * (n ? m[0] : 1.0f);
    double env = 1.0;
    for (size_t i = 0; i < n; i++) {
        sum += (double)m[i] - (double)m[i > la ? i - la - 1 : 0];
        double b = sum / (double)(la + 1);
        if (b > req[i])
            b = req[i]; /* guards rounding drift in the running sum */
        env = b < env ? b : env + (b - env) * rel;
        g[i] = (float)env;
    }
    free(dq);
    free(req);
    free(m);
    return RF_OK;
}

rf_err
rf_audio_master(const rf_narration *n, int64_t offset_ms, size_t total_frames, double target_lufs,
                double max_true_peak_db, float **out_pcm, double *out_lufs, double *out_tp)
{
    rf_err rv = RF_OK;
    float *track = NULL, *g = NULL;
    if (out_pcm == NULL)
        return RF_EINVAL;
    *out_pcm = NULL;
    if (total_frames > SIZE_MAX / (RF_AUDIO_CHANNELS * sizeof(float)) || !isfinite(target_lufs) ||
        !isfinite(max_true_peak_db))
        return RF_EINVAL;
    track = calloc(total_frames ? total_frames * RF_AUDIO_CHANNELS : 1, sizeof(*track));
    if (track == NULL)
        return RF_ENOMEM;

    /* Where the narration lands on the track; a negative offset cuts its
     * start, a track too short cuts its end. */
    const float *src = NULL;
    size_t at = 0, len = 0;
    if (n != NULL && n->pcm != NULL && n->frames > 0) {
        int64_t off = offset_ms * RF_AUDIO_RATE / 1000;
        size_t skip = off < 0 ? (size_t)(-off) : 0;
        at = off > 0 ? (size_t)off : 0;
        if (skip < n->frames && at < total_frames) {
            len = n->frames - skip;
            if (len > total_frames - at)
                len = total_frames - at;
            src = n->pcm + skip * RF_AUDIO_CHANNELS;
        }
    }
    double lufs = -HUGE_VAL, tp = -HUGE_VAL;
    if (len == 0)
        goto done; /* silence: nothing to normalise */

    float *dst = track + at * RF_AUDIO_CHANNELS;
    memcpy(dst, src, len * RF_AUDIO_CHANNELS * sizeof(*dst));
    /* Only the narration and 400 ms of silence either side (one gating
     * block) are measured, starting on the 100 ms block grid of the whole
     * track: blocks wholly in digital silence fall under R128's absolute gate
     * and hold no peak, so both figures are exactly those of the whole track,
     * at a fraction of the work in a long video. */
    const size_t hop = RF_AUDIO_RATE / 10, pad = RF_AUDIO_RATE * 4 / 10;
    size_t m_start = at > pad ? (at - pad) / hop * hop : 0;
    size_t m_end = at + len + pad < total_frames ? at + len + pad : total_frames;
    const float *m_pcm = track + m_start * RF_AUDIO_CHANNELS;
    size_t m_len = m_end - m_start;
    double l0;
    rv = rf_audio_measure(m_pcm, m_len, &l0, NULL);
    if (rv != RF_OK)
        goto out;
    if (!isfinite(l0)) {
        /* Below the absolute gate: nothing loud enough to normalise. */
        rf_warn("audio master: narration too quiet to measure, left as is");
        rv = rf_audio_measure(m_pcm, m_len, &lufs, &tp);
        goto done;
    }
    g = malloc(len * sizeof(*g));
    if (g == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    /* Gain brings loudness to target; the limiter then catches the peaks
     * that gain pushed over the ceiling. Sample peaks under-read true peaks,
     * and limiting lowers loudness a little, so correct both and repeat. */
    double gain_db = target_lufs - l0;
    double ceiling_db = max_true_peak_db - 0.5;
    for (int it = 0; it < RF_MASTER_MAX_ITER; it++) {
        double gain = pow(10.0, gain_db / 20.0);
        rv = rf_limiter_gain(src, len, gain, pow(10.0, ceiling_db / 20.0), g);
        if (rv != RF_OK)
            goto out;
        for (size_t i = 0; i < len; i++)
            for (int c = 0; c < RF_AUDIO_CHANNELS; c++) {
                size_t k = i * RF_AUDIO_CHANNELS + (size_t)c;
                dst[k] = (float)(src[k] * gain * g[i]);
            }
        rv = rf_audio_measure(m_pcm, m_len, &lufs, &tp);
        if (rv != RF_OK)
            goto out;
        bool tp_ok = tp <= max_true_peak_db;
        bool l_ok = fabs(lufs - target_lufs) <= 0.3;
        if (tp_ok && l_ok)
            break;
        if (!tp_ok)
            ceiling_db -= tp - max_true_peak_db + 0.1;
        if (isfinite(lufs))
            gain_db += target_lufs - lufs;
    }
    if (tp > max_true_peak_db) {
        /* Last resort, never reached in practice: scale the whole track so
         * the peak limit holds even at some cost in loudness. */
        double s = pow(10.0, (max_true_peak_db - 0.05 - tp) / 20.0);
        for (size_t k = 0; k < len * RF_AUDIO_CHANNELS; k++)
            dst[k] = (float)(dst[k] * s);
        rv = rf_audio_measure(m_pcm, m_len, &lufs, &tp);
        if (rv != RF_OK)
            goto out;
    }
    if (fabs(lufs - target_lufs) > 1.0)
        rf_warn("audio master: loudness %.2f LUFS misses target %.2f", lufs, target_lufs);
done:
    if (out_lufs != NULL)
        *out_lufs = lufs;
    if (out_tp != NULL)
        *out_tp = tp;
    *out_pcm = track;
    track = NULL;
out:
    free(g);
    free(track);
    return rv;
}
