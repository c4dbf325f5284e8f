/* rf_util, rf_err and rf_log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rf_err.h"
#include "rf_log.h"
#include "rf_util.h"

static char tmpdir[256];

static int
setup(void **state)
{
    strcpy(tmpdir, "/tmp/rf_test_util_XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void
rm_rf(const char *path)
{
    /* Only ever our own mkdtemp directory; children before parents. */
    if (strncmp(path, "/tmp/rf_test_util_", 18) == 0) {
        nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
}

static int
teardown(void **state)
{
    rm_rf(tmpdir);
    return 0;
}

static void
write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void
test_strerror(void **state)
{
    const char *seen[RF_ECANCELED + 1];

    for (int e = RF_OK; e <= RF_ECANCELED; e++) {
        const char *s = rf_strerror((rf_err)e);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        assert_string_not_equal(s, "unknown error");
        for (int j = 0; j < e; j++) {
            assert_string_not_equal(s, seen[j]);
        }
        seen[e] = s;
    }
    assert_string_equal(rf_strerror((rf_err)999), "unknown error");
}

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void
test_new_id(void **state)
{
    enum { N = 10000, W = 32 };
    char(*ids)[W] = calloc(N, W);
    char small[10];
    int64_t before, after, t;

    assert_non_null(ids);
    before = rf_now_ms();
    for (int i = 0; i < N; i++) {
        rf_new_id("u_", ids[i], W);
        assert_int_equal(strlen(ids[i]), 28);
        assert_memory_equal(ids[i], "u_", 2);
        for (int k = 2; k < 28; k++) {
            assert_non_null(strchr(crockford, ids[i][k]));
        }
    }
    after = rf_now_ms();
    /* The first 10 chars are the creation time in ms. */
    t = 0;
    for (int k = 2; k < 12; k++) {
        t = t * 32 + (strchr(crockford, ids[0][k]) - crockford);
    }
    assert_true(t >= before && t <= after);
    /* Unique. */
    qsort(ids, N, W, cmp_str);
    for (int i = 1; i < N; i++) {
        assert_string_not_equal(ids[i - 1], ids[i]);
    }
    /* Sortable: an id made a few ms later sorts after. */
    rf_new_id("", ids[0], W);
    usleep(3000);
    rf_new_id("", ids[1], W);
    assert_true(strcmp(ids[0], ids[1]) < 0);
    /* Too small a buffer gets "", never a truncated id. */
    memset(small, 'z', sizeof(small));
    rf_new_id("p_", small, sizeof(small));
    assert_string_equal(small, "");
    free(ids);
}

static void
test_sha256(void **state)
{
    char path[512], hex[65];
    char *big;

    snprintf(path, sizeof(path), "%s/abc", tmpdir);
    write_file(path, "abc", 3);
    assert_int_equal(rf_sha256_file(path, hex), RF_OK);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

    snprintf(path, sizeof(path), "%s/empty", tmpdir);
    write_file(path, "", 0);
    assert_int_equal(rf_sha256_file(path, hex), RF_OK);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

    /* Several read chunks. */
    big = malloc(1000000);
    assert_non_null(big);
    memset(big, 'a', 1000000);
    snprintf(path, sizeof(path), "%s/million_a", tmpdir);
    write_file(path, big, 1000000);
    free(big);
    assert_int_equal(rf_sha256_file(path, hex), RF_OK);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

    snprintf(path, sizeof(path), "%s/missing", tmpdir);
    assert_int_equal(rf_sha256_file(path, hex), RF_ENOTFOUND);
}

static void
test_time(void **state)
{
    char buf[32];
    int64_t a, b;

    rf_time_rfc3339(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
    rf_time_rfc3339(1761786000000LL, buf, sizeof(buf));
    assert_string_equal(buf, "2025-10-30T01:00:00Z");
    rf_time_rfc3339(1761786000999LL, buf, sizeof(buf));
    assert_string_equal(buf, "2025-10-30T01:00:00Z");
    rf_time_rfc3339(951782400000LL, buf, sizeof(buf)); /* leap day 2000 */
    assert_string_equal(buf, "2000-02-29T00:00:00Z");
    rf_time_rfc3339(-1, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T23:59:59Z");

    /* Wall clock agrees with time(2); monotonic never goes back. */
    assert_true(llabs(rf_now_ms() / 1000 - (int64_t)time(NULL)) <= 1);
    a = rf_mono_ns();
    usleep(2000);
    b = rf_mono_ns();
    assert_true(b - a >= 2000000);
    assert_true(rf_mono_ms() >= a / 1000000);
}

static void
test_mkdirs_and_read_file(void **state)
{
    char path[512], file[512];
    char *data = NULL;
    size_t len = 0;
    struct stat st;

    snprintf(path, sizeof(path), "%s/a/b/c/", tmpdir);
    assert_int_equal(rf_mkdirs(path), RF_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(rf_mkdirs(path), RF_OK); /* exists already */

    snprintf(file, sizeof(file), "%s/a/b/c/f.txt", tmpdir);
    write_file(file, "hello\0world", 11);
    assert_int_equal(rf_read_file(file, 11, &data, &len), RF_OK);
    assert_int_equal(len, 11);
    assert_memory_equal(data, "hello\0world", 12); /* NUL-terminated too */
    free(data);
    data = NULL;
    assert_int_equal(rf_read_file(file, 10, &data, &len), RF_ETOOBIG);
    assert_null(data);

    /* A path through a regular file cannot be created. */
    snprintf(path, sizeof(path), "%s/a/b/c/f.txt/sub", tmpdir);
    assert_int_equal(rf_mkdirs(path), RF_EIO);

    snprintf(file, sizeof(file), "%s/nope", tmpdir);
    assert_int_equal(rf_read_file(file, 100, &data, &len), RF_ENOTFOUND);

    snprintf(file, sizeof(file), "%s/empty", tmpdir);
    write_file(file, "", 0);
    assert_int_equal(rf_read_file(file, 0, &data, &len), RF_OK);
    assert_int_equal(len, 0);
    assert_string_equal(data, "");
    free(data);

    /* Files larger than the first read chunk. */
    {
        char *big = malloc(100000);
        assert_non_null(big);
        for (int i = 0; i < 100000; i++) {
            big[i] = (char)('a' + i % 26);
        }
        snprintf(file, sizeof(file), "%s/big", tmpdir);
        write_file(file, big, 100000);
        assert_int_equal(rf_read_file(file, 100000, &data, &len), RF_OK);
        assert_int_equal(len, 100000);
        assert_memory_equal(data, big, 100000);
        free(data);
        assert_int_equal(rf_read_file(file, 99999, &data, &len), RF_ETOOBIG);
        free(big);
    }
}

static void
test_fmt_and_strlcpy(void **state)
{
    char buf[8];

    assert_int_equal(rf_fmt(buf, sizeof(buf), "%d-%s", 12, "ab"), RF_OK);
    assert_string_equal(buf, "12-ab");
    assert_int_equal(rf_fmt(buf, sizeof(buf), "%s", "12345678"), RF_ETOOBIG);
    assert_string_equal(buf, "1234567");
    assert_int_equal(rf_fmt(buf, sizeof(buf), "%s", "1234567"), RF_OK);

    assert_int_equal(rf_strlcpy(buf, "1234567", sizeof(buf)), RF_OK);
    assert_string_equal(buf, "1234567");
    assert_int_equal(rf_strlcpy(buf, "12345678", sizeof(buf)), RF_ETOOBIG);
    assert_string_equal(buf, "1234567");
    assert_int_equal(rf_strlcpy(buf, NULL, sizeof(buf)), RF_OK);
    assert_string_equal(buf, "");
}

static void
test_log_level_parse(void **state)
{
    assert_int_equal(rf_log_level_parse("debug"), RF_LOG_DEBUG);
    assert_int_equal(rf_log_level_parse("info"), RF_LOG_INFO);
    assert_int_equal(rf_log_level_parse("warn"), RF_LOG_WARN);
    assert_int_equal(rf_log_level_parse("ERROR"), RF_LOG_ERROR);
    assert_int_equal(rf_log_level_parse("bogus"), RF_LOG_INFO);
    assert_int_equal(rf_log_level_parse(NULL), RF_LOG_INFO);
}

static void *
log_worker(void *arg)
{
    for (int i = 0; i < 200; i++) {
        rf_info("worker %d line %d %s", (int)(intptr_t)arg, i, "padding-padding-padding");
    }
    return NULL;
}

/* Lines go to stderr; capture them by pointing fd 2 at a file. */
static void
test_log_lines(void **state)
{
    char path[512], pat[256];
    int saved, fd;
    pthread_t th[4];
    char *data = NULL, *line, *save = NULL;
    size_t len = 0;
    regex_t re;
    int n_lines = 0, n_worker = 0;

    snprintf(path, sizeof(path), "%s/log.txt", tmpdir);
    fflush(stderr);
    saved = dup(2);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0 && saved >= 0);
    dup2(fd, 2);
    close(fd);

    rf_log_init("testcomp", RF_LOG_INFO);
    rf_debug("hidden %d", 1);
    rf_info("hello %d", 42);
    rf_warn("careful\n");
    rf_error("bad");
    for (intptr_t i = 0; i < 4; i++) {
        pthread_create(&th[i], NULL, log_worker, (void *)i);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }
    rf_log_init("testcomp", RF_LOG_ERROR);
    rf_warn("hidden too");

    fflush(stderr);
    dup2(saved, 2);
    close(saved);

    assert_int_equal(rf_read_file(path, 1 << 20, &data, &len), RF_OK);
    assert_null(strstr(data, "hidden"));
    snprintf(pat, sizeof(pat),
             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
             "testcomp\\[%ld\\] (INFO|WARN|ERROR) [^\n]+$",
             (long)getpid());
    assert_int_equal(regcomp(&re, pat, REG_EXTENDED | REG_NOSUB), 0);
    for (line = strtok_r(data, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        if (regexec(&re, line, 0, NULL, 0) != 0) {
            fail_msg("bad log line: %s", line);
        }
        n_lines++;
        /* Whole lines: no interleaving from other threads. */
        if (strstr(line, " INFO worker ") != NULL) {
            assert_non_null(strstr(line, " padding-padding-padding"));
            n_worker++;
        }
    }
    regfree(&re);
    assert_int_equal(n_worker, 800);
    assert_int_equal(n_lines, 803);
    free(data);
    (void)len;
}

static void
test_log_first_line_exact(void **state)
{
    /* The level word and message land where readers expect them. */
    char path[512];
    int saved, fd;
    char *data = NULL;
    size_t len = 0;

    snprintf(path, sizeof(path), "%s/log2.txt", tmpdir);
    fflush(stderr);
    saved = dup(2);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    rf_log_init("coord", RF_LOG_DEBUG);
    rf_debug("x=%s", "y");
    dup2(saved, 2);
    close(saved);
    assert_int_equal(rf_read_file(path, 4096, &data, &len), RF_OK);
    assert_int_equal(data[len - 1], '\n');
    assert_non_null(strstr(data, "Z coord["));
    assert_non_null(strstr(data, "] DEBUG x=y\n"));
    free(data);
}

static void
test_bodybuf(void **state)
{
    rf_bodybuf b = {.max = 8};
    char chunk[] = "abcdefghij";

    /* Chunks append and stay NUL-terminated; exactly max bytes fit. */
    assert_int_equal(rf_bodybuf_write(chunk, 1, 3, &b), 3);
    assert_int_equal(rf_bodybuf_write(chunk + 3, 5, 1, &b), 5);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "abcdefgh");
    assert_false(b.too_big);
    /* One byte more aborts the transfer and keeps what was read. */
    assert_int_equal(rf_bodybuf_write(chunk, 1, 1, &b), 0);
    assert_true(b.too_big);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "abcdefgh");
    free(b.data);

    /* A chunk larger than max on its own, and sizes that would wrap. */
    b = (rf_bodybuf){.max = 4};
    assert_int_equal(rf_bodybuf_write(chunk, 1, 5, &b), 0);
    assert_true(b.too_big);
    assert_null(b.data);
    b = (rf_bodybuf){.max = 4, .len = 2};
    assert_int_equal(rf_bodybuf_write(chunk, 1, SIZE_MAX, &b), 0);
    assert_true(b.too_big);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_new_id),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_mkdirs_and_read_file),
        cmocka_unit_test(test_fmt_and_strlcpy),
        cmocka_unit_test(test_log_level_parse),
        cmocka_unit_test(test_log_lines),
        cmocka_unit_test(test_log_first_line_exact),
        cmocka_unit_test(test_bodybuf),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
