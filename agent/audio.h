/* Narration: espeak-ng speech with word timing, captions from that timing,
 * and the final loudness-normalised track. */
#ifndef RF_AUDIO_H
#define RF_AUDIO_H

#include <stddef.h>
#include <stdint.h>

#include "rf_err.h"
#include "scene.h"

#define RF_AUDIO_RATE 48000
#define RF_AUDIO_CHANNELS 2

/* A spoken word: byte range in the script, and when it is spoken relative
 * to the start of the narration. */
typedef struct rf_word {
    uint32_t text_start, text_len;
    int64_t start_ms, end_ms;
} rf_word;

typedef struct rf_narration {
    float *pcm;    /* interleaved stereo float, RF_AUDIO_RATE */
    size_t frames; /* samples per channel */
    rf_word *words;
    size_t n_words;
} rf_narration;

/* Synthesises script with espeak-ng. voice is "female", "male" or "neutral";
 * speed multiplies the normal rate (0.5..2.0); pitch shifts in semitones
 * (-12..12). Thread-safe: espeak-ng has global state, so calls are
 * serialised internally. RF_EAUDIO with a reason in err on failure. */
rf_err rf_narration_synth(const char *script, const char *voice, double speed, double pitch,
                          rf_narration *out, char *err, size_t err_len);

void rf_narration_free(rf_narration *n);

/* Groups words into captions of at most max_chars characters (breaking at
 * sentence ends first), each shown while its words are spoken; times are
 * shifted by offset_ms onto the video's timeline. Caption text is copied from
 * the script. */
rf_err rf_captions_build(const char *script, const rf_word *words, size_t n_words, int max_chars,
                         int64_t offset_ms, rf_caption **out, int *n_out);
void rf_captions_free(rf_caption *caps, int n);

/* Builds the final track of exactly total_frames samples per channel:
 * silence with the narration placed at offset_ms, normalised to target_lufs
 * integrated (EBU R128) with true peak at most max_true_peak_db (a limiter
 * handles peaks rather than lowering the whole track). *out_pcm is malloc'd
 * interleaved stereo float. Measured results in *out_lufs / *out_tp. */
rf_err rf_audio_master(const rf_narration *n, int64_t offset_ms, size_t total_frames,
                       double target_lufs, double max_true_peak_db, float **out_pcm,
                       double *out_lufs, double *out_tp);

/* Measures integrated loudness (LUFS) and true peak (dBTP) of a track. */
rf_err rf_audio_measure(const float *pcm, size_t frames, double *lufs, double *tp);

#endif
