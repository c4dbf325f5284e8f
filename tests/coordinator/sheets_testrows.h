/* The messy sheet the validation tests share: one row per kind of trouble
 * users put in their sheets. Sheet row numbers start at 2 (row 1 is the
 * header). */
#ifndef RF_SHEETS_TESTROWS_H
#define RF_SHEETS_TESTROWS_H

#include <string.h>

#include "rows.h"

typedef struct messy_row {
    uint32_t row_number;
    const char *cells[RF_F_COUNT]; /* A..J; NULL = absent (ragged) */
} messy_row;

#define LONG_SCRIPT                                                                                \
    "This is a script without a title, and it goes on for a long while past eighty characters "    \
    "for sure, yes.\nSecond line."

static const messy_row messy_rows[] = {
    {2,
     {"How to improve productivity", "Learn about AI tools", "busy professionals", "educational",
      "300", "youtube,tiktok", "Full script text...", "female", "modern", "normal"}},
    /* RTL title with an emoji, only what moderate needs plus a duration */
    {3, {"كيف تحسن إنتاجيتك 🚀", NULL, NULL, NULL, "120", NULL, "نص كامل للفيديو"}},
    {4, {NULL}},                                                      /* Google's [] */
    {5, {"  ", "", "\t", NULL, " "}},                                 /* blank cells */
    {6, {"No script here", "a description"}},                         /* missing script */
    {7, {"Bad duration", NULL, NULL, NULL, "abc", NULL, "script 7"}}, /* not a number */
    {8, {"Too long", NULL, NULL, NULL, "4000", NULL, "script 8"}},    /* over 3600 */
    {9, {"Decimal duration", NULL, NULL, NULL, "300.0", NULL, "script 9"}},
    {10, {"Unknown platform", NULL, NULL, NULL, NULL, "myspace, youtube", "script 10"}},
    {11,
     {"Unknown choices", NULL, NULL, NULL, NULL, NULL, "script 11", "Robot", "Retro", "urgent"}},
    {12, {NULL, "just a description"}},                      /* neither title nor script */
    {13, {NULL, NULL, NULL, NULL, NULL, NULL, LONG_SCRIPT}}, /* script only */
    {14, {"日本語のタイトル", NULL, NULL, NULL, NULL, "Instagram-Reels", "スクリプト", "MALE"}},
    {15, {"Bad bytes", "\xff\xfe broken", NULL, NULL, NULL, NULL, "script 15"}},
    {16,
     {"  Padded title  ", NULL, NULL, NULL, " 60 ", "YouTube; Shorts | reels", "s16", " Neutral ",
      "CLASSIC", "High"}},
};

#define N_MESSY (sizeof(messy_rows) / sizeof(messy_rows[0]))

/* Builds the row table; returns 0 on success. */
static inline int
messy_build(rf_rows *rows)
{
    memset(rows, 0, sizeof(*rows));
    for (size_t i = 0; i < N_MESSY; i++) {
        rf_row *row;
        if (rf_rows_add(rows, messy_rows[i].row_number, &row) != RF_OK) {
            return -1;
        }
        for (int f = 0; f < RF_F_COUNT; f++) {
            const char *s = messy_rows[i].cells[f];
            if (s != NULL && rf_row_set(row, (rf_field)f, s, strlen(s)) != RF_OK) {
                return -1;
            }
        }
    }
    return 0;
}

#endif
