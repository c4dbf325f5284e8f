/* SSRF guard: the address table, allow lists, URL vetting, and the libcurl
 * pinning against a listener on 127.0.0.1. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "ssrf.h"

static void
to_sockaddr(const char *ip, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ss->ss_family = AF_INET;
        return;
    }
    assert_int_equal(inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)ss)->sin6_addr), 1);
    ss->ss_family = AF_INET6;
}

static const char *
classify(const char *ip)
{
    struct sockaddr_storage ss;
    to_sockaddr(ip, &ss);
    return rf_ssrf_classify((struct sockaddr *)&ss);
}

static void
test_address_table(void **state)
{
    static const struct {
        const char *ip;
        const char *want; /* NULL = public */
    } cases[] = {
        {"127.0.0.1", "loopback"},
        {"127.255.255.254", "loopback"},
        {"10.0.0.1", "private"},
        {"172.16.0.1", "private"},
        {"172.31.255.255", "private"},
        {"172.32.0.1", NULL},
        {"192.168.1.1", "private"},
        {"169.254.169.254", "link-local"},
        {"100.64.0.1", "shared-cgnat"},
        {"100.127.255.255", "shared-cgnat"},
        {"100.128.0.1", NULL},
        {"0.0.0.0", "this-network"},
        {"0.1.2.3", "this-network"},
        {"224.0.0.1", "multicast"},
        {"239.255.255.250", "multicast"},
        {"255.255.255.255", "reserved"},
        {"192.0.2.10", "documentation"},
        {"198.18.0.1", "benchmarking"},
        {"8.8.8.8", NULL},
        {"93.184.216.34", NULL},
        {"::1", "loopback"},
        {"::", "unspecified"},
        {"fc00::1", "private"},
        {"fd12:3456::1", "private"},
        {"fe80::1", "link-local"},
        {"febf::1", "link-local"},
        {"ff02::1", "multicast"},
        {"::ffff:127.0.0.1", "loopback"},
        {"::ffff:169.254.169.254", "link-local"},
        {"::ffff:10.1.2.3", "private"},
        {"::ffff:8.8.8.8", NULL},
        {"64:ff9b::10.0.0.1", "private"},
        {"2002:0a00:0001::1", "private"}, /* 6to4 of 10.0.0.1 */
        {"::10.0.0.1", "ipv4-compatible"},
        {"2001:db8::1", "documentation"},
        {"2606:4700:4700::1111", NULL},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = classify(cases[i].ip);
        if (cases[i].want == NULL) {
            if (got != NULL) {
                fail_msg("%s: expected public, got %s", cases[i].ip, got);
            }
        } else if (got == NULL || strcmp(got, cases[i].want) != 0) {
            fail_msg("%s: expected %s, got %s", cases[i].ip, cases[i].want, got ? got : "public");
        }
    }
}

static void
test_allow_list(void **state)
{
    rf_ssrf_policy *p = NULL;
    struct sockaddr_storage ss;
    const char *why;
    char err[160];

    (void)state;
    assert_int_equal(
        rf_ssrf_policy_new("127.0.0.1, 10.20.0.0/16 fd00::/8 hooks.internal", &p, err, sizeof(err)),
        RF_OK);
    to_sockaddr("127.0.0.1", &ss);
    assert_true(rf_ssrf_addr_allowed(p, NULL, (struct sockaddr *)&ss, &why));
    to_sockaddr("127.0.0.2", &ss);
    assert_false(rf_ssrf_addr_allowed(p, NULL, (struct sockaddr *)&ss, &why));
    assert_string_equal(why, "loopback");
    to_sockaddr("::ffff:127.0.0.1", &ss); /* the mapped form of an allowed address */
    assert_true(rf_ssrf_addr_allowed(p, NULL, (struct sockaddr *)&ss, NULL));
    to_sockaddr("10.20.5.5", &ss);
    assert_true(rf_ssrf_addr_allowed(p, NULL, (struct sockaddr *)&ss, NULL));
    to_sockaddr("10.21.0.1", &ss);
    assert_false(rf_ssrf_addr_allowed(p, NULL, (struct sockaddr *)&ss, NULL));
    to_sockaddr("fd00::5", &ss);
    assert_true(rf_ssrf_addr_allowed(p, NULL, (struct sockaddr *)&ss, NULL));
    to_sockaddr("192.168.0.9", &ss);
    assert_true(rf_ssrf_addr_allowed(p, "Hooks.Internal.", (struct sockaddr *)&ss, NULL));
    assert_false(rf_ssrf_addr_allowed(p, "other.internal", (struct sockaddr *)&ss, NULL));
    to_sockaddr("8.8.4.4", &ss);
    assert_true(rf_ssrf_addr_allowed(NULL, NULL, (struct sockaddr *)&ss, NULL));
    rf_ssrf_policy_free(&p);
    assert_null(p);

    assert_int_equal(rf_ssrf_policy_new("10.0.0.0/33", &p, err, sizeof(err)), RF_EINVAL);
    assert_int_equal(rf_ssrf_policy_new("host/8", &p, err, sizeof(err)), RF_EINVAL);
    assert_int_equal(rf_ssrf_policy_new("bad host!", &p, err, sizeof(err)), RF_EINVAL);
    assert_int_equal(rf_ssrf_policy_new("", &p, err, sizeof(err)), RF_OK);
    rf_ssrf_policy_free(&p);
}

static void
test_check_url(void **state)
{
    rf_ssrf_policy *allow = NULL;
    rf_ssrf_target t;
    char err[200];

    (void)state;
    /* Literal addresses need no DNS, so none of these sends a packet. */
    assert_int_equal(rf_ssrf_check_url(NULL, "http://10.0.0.1/hook", &t, err, sizeof(err)),
                     RF_ECONFLICT);
    assert_non_null(strstr(err, "private"));
    assert_int_equal(
        rf_ssrf_check_url(NULL, "http://169.254.169.254/latest/meta-data/", &t, err, sizeof(err)),
        RF_ECONFLICT);
    assert_non_null(strstr(err, "link-local"));
    assert_int_equal(rf_ssrf_check_url(NULL, "http://127.0.0.1:9/x", &t, err, sizeof(err)),
                     RF_ECONFLICT);
    assert_int_equal(rf_ssrf_check_url(NULL, "http://[::1]:8080/x", &t, err, sizeof(err)),
                     RF_ECONFLICT);
    assert_int_equal(rf_ssrf_check_url(NULL, "http://[::ffff:7f00:1]/x", &t, err, sizeof(err)),
                     RF_ECONFLICT);
    /* Decimal and hex spellings of 127.0.0.1 are still loopback. */
    assert_int_equal(rf_ssrf_check_url(NULL, "http://2130706433/", &t, err, sizeof(err)),
                     RF_ECONFLICT);
    assert_int_equal(rf_ssrf_check_url(NULL, "http://0x7f.0.0.1/", &t, err, sizeof(err)),
                     RF_ECONFLICT);
    /* localhost resolves through /etc/hosts: loopback. */
    assert_int_equal(rf_ssrf_check_url(NULL, "http://localhost:8080/", &t, err, sizeof(err)),
                     RF_ECONFLICT);
    /* Scheme, credentials, garbage. */
    assert_int_equal(rf_ssrf_check_url(NULL, "ftp://8.8.8.8/", &t, err, sizeof(err)), RF_EINVAL);
    assert_int_equal(rf_ssrf_check_url(NULL, "file:///etc/passwd", &t, err, sizeof(err)),
                     RF_EINVAL);
    assert_int_equal(rf_ssrf_check_url(NULL, "gopher://8.8.8.8/", &t, err, sizeof(err)), RF_EINVAL);
    assert_int_equal(rf_ssrf_check_url(NULL, "http://u:p@8.8.8.8/", &t, err, sizeof(err)),
                     RF_EINVAL);
    assert_int_equal(rf_ssrf_check_url(NULL, "not a url", &t, err, sizeof(err)), RF_EINVAL);
    /* A public literal passes, with its default port. */
    assert_int_equal(rf_ssrf_check_url(NULL, "https://8.8.8.8/hook", &t, err, sizeof(err)), RF_OK);
    assert_string_equal(t.addr, "8.8.8.8");
    assert_int_equal(t.port, 443);
    assert_true(t.host_is_ip);

    /* 127.0.0.1 only when the operator allows it. */
    assert_int_equal(rf_ssrf_policy_new("127.0.0.1", &allow, err, sizeof(err)), RF_OK);
    assert_int_equal(rf_ssrf_check_url(allow, "http://127.0.0.1:8080/cb", &t, err, sizeof(err)),
                     RF_OK);
    assert_string_equal(t.addr, "127.0.0.1");
    assert_int_equal(t.port, 8080);
    assert_int_equal(rf_ssrf_check_url(allow, "http://10.0.0.1/", &t, err, sizeof(err)),
                     RF_ECONFLICT);
    rf_ssrf_policy_free(&allow);
}

/* ---- pinning against a real listener ---- */

typedef struct listener {
    int fd;
    int port;
    char got[2048];
    size_t n;
    pthread_t th;
} listener;

static void *
listener_main(void *arg)
{
    listener *l = arg;
    struct pollfd pfd = {.fd = l->fd, .events = POLLIN};
    int c;

    if (poll(&pfd, 1, 5000) != 1) {
        return NULL;
    }
    c = accept(l->fd, NULL, NULL);
    if (c < 0) {
        return NULL;
    }
    pfd.fd = c;
    while (l->n + 1 < sizeof(l->got) && poll(&pfd, 1, 1000) == 1) {
        ssize_t r = read(c, l->got + l->n, sizeof(l->got) - 1 - l->n);
        if (r <= 0) {
            break;
        }
        l->n += (size_t)r;
        l->got[l->n] = '\0';
        if (strstr(l->got, "\r\n\r\n") != NULL) {
            const char *resp = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
            ssize_t w = write(c, resp, strlen(resp));
            (void)w;
            break;
        }
    }
    close(c);
    return NULL;
}

static void
listener_start(listener *l)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);

    memset(l, 0, sizeof(*l));
    l->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l->fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l->fd, 4), 0);
    assert_int_equal(getsockname(l->fd, (struct sockaddr *)&a, &al), 0);
    l->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&l->th, NULL, listener_main, l), 0);
}

static void
listener_stop(listener *l)
{
    pthread_join(l->th, NULL);
    close(l->fd);
}

static size_t
sink(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

/* A name that does not exist in DNS reaches the vetted address through the
 * pin: libcurl never resolves it itself. */
static void
test_pin_resolves_to_vetted_address(void **state)
{
    listener l;
    rf_ssrf_target t;
    rf_ssrf_pin pin;
    char url[128];
    CURL *h;
    long code = 0;

    (void)state;
    listener_start(&l);
    memset(&t, 0, sizeof(t));
    strcpy(t.scheme, "http");
    strcpy(t.host, "hooks.invalid");
    t.port = l.port;
    strcpy(t.addr, "127.0.0.1");
    snprintf(url, sizeof(url), "http://hooks.invalid:%d/cb", l.port);
    h = curl_easy_init();
    assert_non_null(h);
    assert_int_equal(rf_ssrf_pin_apply(h, &t, &pin), RF_OK);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    assert_int_equal(code, 204);
    assert_false(pin.refused);
    curl_easy_cleanup(h);
    rf_ssrf_pin_clear(&pin);
    listener_stop(&l);
    assert_non_null(strstr(l.got, "Host: hooks.invalid"));
}

/* The connected peer is not the vetted address: the transfer is aborted
 * after connect and before a single request byte is sent. */
static void
test_prereq_refuses_other_peer(void **state)
{
    listener l;
    rf_ssrf_target t;
    rf_ssrf_pin pin;
    char url[128];
    CURL *h;

    (void)state;
    listener_start(&l);
    memset(&t, 0, sizeof(t));
    strcpy(t.scheme, "http");
    strcpy(t.host, "127.0.0.1");
    t.host_is_ip = true;
    t.port = l.port;
    strcpy(t.addr, "127.0.0.2"); /* what the check vetted; we connect elsewhere */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/cb", l.port);
    h = curl_easy_init();
    assert_non_null(h);
    assert_int_equal(rf_ssrf_pin_apply(h, &t, &pin), RF_OK);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    assert_int_equal(curl_easy_perform(h), CURLE_ABORTED_BY_CALLBACK);
    assert_true(pin.refused);
    assert_string_equal(pin.refused_ip, "127.0.0.1");
    curl_easy_cleanup(h);
    rf_ssrf_pin_clear(&pin);
    listener_stop(&l);
    assert_int_equal(l.n, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address_table),
        cmocka_unit_test(test_allow_list),
        cmocka_unit_test(test_check_url),
        cmocka_unit_test(test_pin_resolves_to_vetted_address),
        cmocka_unit_test(test_prereq_refuses_other_peer),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
