/* SSRF guard: address classification, allow lists, URL vetting and pinning
 * of the vetted address into a libcurl transfer. */
#include "ssrf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rf_log.h"
#include "rf_util.h"

#define MAX_ALLOW_ENTRIES 64

typedef struct cidr {
    int family;            /* AF_INET or AF_INET6 */
    unsigned char net[16]; /* 4 or 16 significant bytes */
    int prefix;
} cidr;

struct rf_ssrf_policy {
    cidr nets[MAX_ALLOW_ENTRIES];
    size_t n_nets;
    char hosts[MAX_ALLOW_ENTRIES][256];
    size_t n_hosts;
};

/* ---- address classification ---- */

typedef struct v4_range {
    uint32_t net;
    int prefix;
    const char *name;
} v4_range;

/* Special-purpose IPv4 ranges (RFC 6890 and friends) no webhook may reach. */
static const v4_range v4_refused[] = {
    {0x00000000u, 8, "this-network"},   /* 0.0.0.0/8 */
    {0x0a000000u, 8, "private"},        /* 10.0.0.0/8 */
    {0x64400000u, 10, "shared-cgnat"},  /* 100.64.0.0/10 */
    {0x7f000000u, 8, "loopback"},       /* 127.0.0.0/8 */
    {0xa9fe0000u, 16, "link-local"},    /* 169.254.0.0/16, cloud metadata */
    {0xac100000u, 12, "private"},       /* 172.16.0.0/12 */
    {0xc0000000u, 24, "ietf-protocol"}, /* 192.0.0.0/24 */
    {0xc0000200u, 24, "documentation"}, /* 192.0.2.0/24 */
    {0xc0a80000u, 16, "private"},       /* 192.168.0.0/16 */
    {0xc6120000u, 15, "benchmarking"},  /* 198.18.0.0/15 */
    {0xc6336400u, 24, "documentation"}, /* 198.51.100.0/24 */
    {0xcb007100u, 24, "documentation"}, /* 203.0.113.0/24 */
    {0xe0000000u, 4, "multicast"},      /* 224.0.0.0/4 */
    {0xf0000000u, 4, "reserved"},       /* 240.0.0.0/4, incl. broadcast */
};

static const char *
classify_v4(uint32_t a)
{
    for (size_t i = 0; i < sizeof(v4_refused) / sizeof(v4_refused[0]); i++) {
        uint32_t mask = v4_refused[i].prefix == 0 ? 0 : 0xffffffffu << (32 - v4_refused[i].prefix);
        if ((a & mask) == v4_refused[i].net) {
            return v4_refused[i].name;
        }
    }
    return NULL;
}

static uint32_t
be32_at(const unsigned char *b)
{
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

static bool
all_zero(const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (b[i] != 0) {
            return false;
        }
    }
    return true;
}

/* If the IPv6 address embeds an IPv4 address in a way that makes packets
 * reach that IPv4 host (mapped, NAT64, 6to4), returns true and sets *v4. */
static bool
v6_embedded_v4(const unsigned char *b, uint32_t *v4)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};

    if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0) {
        *v4 = be32_at(b + 12);
        return true;
    }
    if (b[0] == 0x20 && b[1] == 0x02) { /* 2002::/16, 6to4 */
        *v4 = be32_at(b + 2);
        return true;
    }
    return false;
}

static const char *
classify_v6(const unsigned char *b)
{
    static const unsigned char loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    uint32_t v4;

    if (all_zero(b, 16)) {
        return "unspecified";
    }
    if (memcmp(b, loop, 16) == 0) {
        return "loopback";
    }
    if (v6_embedded_v4(b, &v4)) {
        return classify_v4(v4);
    }
    if (all_zero(b, 12)) {
        return "ipv4-compatible"; /* ::/96, deprecated, never routed */
    }
    if (b[0] == 0x01 && b[1] == 0x00 && all_zero(b + 2, 6)) {
        return "discard"; /* 100::/64 */
    }
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) {
        return "documentation"; /* 2001:db8::/32 */
    }
    if ((b[0] & 0xfe) == 0xfc) {
        return "private"; /* fc00::/7 unique local */
    }
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) {
        return "link-local"; /* fe80::/10 */
    }
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) {
        return "site-local"; /* fec0::/10, deprecated */
    }
    if (b[0] == 0xff) {
        return "multicast";
    }
    return NULL;
}

const char *
rf_ssrf_classify(const struct sockaddr *sa)
{
    if (sa == NULL) {
        return "invalid";
    }
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return classify_v4(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        return classify_v6(in6->sin6_addr.s6_addr);
    }
    return "unsupported-family";
}

/* ---- allow list ---- */

static bool
prefix_match(const unsigned char *a, const unsigned char *net, int prefix)
{
    int full = prefix / 8, rest = prefix % 8;

    if (memcmp(a, net, (size_t)full) != 0) {
        return false;
    }
    if (rest == 0) {
        return true;
    }
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (net[full] & mask);
}

static bool
cidr_contains(const cidr *c, int family, const unsigned char *addr)
{
    return c->family == family && prefix_match(addr, c->net, c->prefix);
}

static void
lower_copy(char *dst, const char *src, size_t len)
{
    size_t i = 0;
    for (; src[i] != '\0' && i + 1 < len; i++) {
        dst[i] = (char)tolower((unsigned char)src[i]);
    }
    dst[i] = '\0';
    if (i > 0 && dst[i - 1] == '.') {
        dst[i - 1] = '\0'; /* "example.com." names the same host */
    }
}

static bool
valid_hostname(const char *h)
{
    if (h[0] == '\0' || strlen(h) > 253) {
        return false;
    }
    for (const char *p = h; *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_') {
            return false;
        }
    }
    return true;
}

static rf_err
parse_entry(rf_ssrf_policy *p, const char *entry, char *err, size_t err_len)
{
    char buf[300];
    char *slash;
    cidr c;

    if (rf_strlcpy(buf, entry, sizeof(buf)) != RF_OK) {
        rf_errf(err, err_len, "ssrf allow list: entry too long: %.40s...", entry);
        return RF_EINVAL;
    }
    memset(&c, 0, sizeof(c));
    slash = strchr(buf, '/');
    if (slash != NULL) {
        *slash = '\0';
    }
    if (inet_pton(AF_INET, buf, c.net) == 1) {
        c.family = AF_INET;
        c.prefix = 32;
    } else if (inet_pton(AF_INET6, buf, c.net) == 1) {
        c.family = AF_INET6;
        c.prefix = 128;
    } else if (slash == NULL && valid_hostname(buf)) {
        if (p->n_hosts >= MAX_ALLOW_ENTRIES) {
            rf_errf(err, err_len, "ssrf allow list: more than %d host names", MAX_ALLOW_ENTRIES);
            return RF_EINVAL;
        }
        lower_copy(p->hosts[p->n_hosts++], buf, sizeof(p->hosts[0]));
        return RF_OK;
    } else {
        rf_errf(err, err_len, "ssrf allow list: \"%s\" is not an address, CIDR or host name",
                entry);
        return RF_EINVAL;
    }
    if (slash != NULL) {
        char *end;
        long v = strtol(slash + 1, &end, 10);
        if (slash[1] == '\0' || *end != '\0' || v < 0 || v > c.prefix) {
            rf_errf(err, err_len, "ssrf allow list: bad prefix length in \"%s\"", entry);
            return RF_EINVAL;
        }
        c.prefix = (int)v;
    }
    if (p->n_nets >= MAX_ALLOW_ENTRIES) {
        rf_errf(err, err_len, "ssrf allow list: more than %d networks", MAX_ALLOW_ENTRIES);
        return RF_EINVAL;
    }
    p->nets[p->n_nets++] = c;
    return RF_OK;
}

rf_err
rf_ssrf_policy_new(const char *allow_list, rf_ssrf_policy **out, char *err, size_t err_len)
{
    rf_ssrf_policy *p;
    rf_err rv = RF_OK;
    const char *s = allow_list != NULL ? allow_list : "";

    *out = NULL;
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return RF_ENOMEM;
    }
    while (*s != '\0') {
        char entry[300];
        size_t n = 0;
        while (*s == ',' || isspace((unsigned char)*s)) {
            s++;
        }
        while (*s != '\0' && *s != ',' && !isspace((unsigned char)*s)) {
            if (n + 1 < sizeof(entry)) {
                entry[n] = *s;
            }
            n++;
            s++;
        }
        if (n == 0) {
            continue;
        }
        if (n >= sizeof(entry)) {
            rf_errf(err, err_len, "ssrf allow list: entry too long");
            rv = RF_EINVAL;
            goto out;
        }
        entry[n] = '\0';
        rv = parse_entry(p, entry, err, err_len);
        if (rv != RF_OK) {
            goto out;
        }
    }
out:
    if (rv != RF_OK) {
        free(p);
        return rv;
    }
    *out = p;
    return RF_OK;
}

void
rf_ssrf_policy_free(rf_ssrf_policy **p)
{
    if (p == NULL || *p == NULL) {
        return;
    }
    free(*p);
    *p = NULL;
}

static bool
host_allowed(const rf_ssrf_policy *p, const char *host)
{
    char h[256];

    if (p == NULL || host == NULL || p->n_hosts == 0) {
        return false;
    }
    lower_copy(h, host, sizeof(h));
    for (size_t i = 0; i < p->n_hosts; i++) {
        if (strcmp(p->hosts[i], h) == 0) {
            return true;
        }
    }
    return false;
}

static bool
nets_allow(const rf_ssrf_policy *p, const struct sockaddr *sa)
{
    const unsigned char *a;
    int family = sa->sa_family;
    unsigned char v4[4];
    uint32_t embedded;

    if (p == NULL) {
        return false;
    }
    if (family == AF_INET) {
        a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else {
        a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    }
    for (size_t i = 0; i < p->n_nets; i++) {
        if (cidr_contains(&p->nets[i], family, a)) {
            return true;
        }
    }
    /* An allowed IPv4 network also covers its IPv4-mapped/NAT64 forms. */
    if (family == AF_INET6 && v6_embedded_v4(a, &embedded)) {
        v4[0] = (unsigned char)(embedded >> 24);
        v4[1] = (unsigned char)(embedded >> 16);
        v4[2] = (unsigned char)(embedded >> 8);
        v4[3] = (unsigned char)embedded;
        for (size_t i = 0; i < p->n_nets; i++) {
            if (cidr_contains(&p->nets[i], AF_INET, v4)) {
                return true;
            }
        }
    }
    return false;
}

bool
rf_ssrf_addr_allowed(const rf_ssrf_policy *p, const char *host, const struct sockaddr *sa,
                     const char **why)
{
    const char *cls = rf_ssrf_classify(sa);

    if (why != NULL) {
        *why = NULL;
    }
    if (cls == NULL) {
        return true;
    }
    if (sa != NULL && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) &&
        (nets_allow(p, sa) || host_allowed(p, host))) {
        return true;
    }
    if (why != NULL) {
        *why = cls;
    }
    return false;
}

/* ---- URL vetting ---- */

static void
addr_to_text(const struct sockaddr *sa, char *buf, size_t len)
{
    const void *a = sa->sa_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (inet_ntop(sa->sa_family, a, buf, (socklen_t)len) == NULL) {
        rf_strlcpy(buf, "?", len);
    }
}

static bool
ascii_only(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s >= 0x80 || (unsigned char)*s < 0x21) {
            return false;
        }
    }
    return true;
}

static rf_err
url_parts(const char *url, rf_ssrf_target *t, char *err, size_t err_len)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL, *password = NULL;
    rf_err rv = RF_EINVAL;
    size_t hl;

    if (u == NULL) {
        return RF_ENOMEM;
    }
    if (url == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        rf_errf(err, err_len, "not a valid URL");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        rf_errf(err, err_len, "only http and https URLs are allowed");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK) {
        rf_errf(err, err_len, "URLs with credentials are not allowed");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
        rf_errf(err, err_len, "URL has no host");
        goto out;
    }
    if (!ascii_only(host) || strchr(host, '%') != NULL) {
        /* IDN names are converted by libcurl after our check and zone ids
         * pick an interface: refuse both rather than vet the wrong name. */
        rf_errf(err, err_len, "URL host must be ASCII without a zone id");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        rf_errf(err, err_len, "URL has no usable port");
        goto out;
    }
    hl = strlen(host);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        memmove(host, host + 1, hl - 1);
    }
    if (rf_strlcpy(t->host, host, sizeof(t->host)) != RF_OK) {
        rf_errf(err, err_len, "URL host too long");
        goto out;
    }
    rf_strlcpy(t->scheme, scheme, sizeof(t->scheme));
    t->port = atoi(port);
    if (t->port <= 0 || t->port > 65535) {
        rf_errf(err, err_len, "URL port out of range");
        goto out;
    }
    rv = RF_OK;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(user);
    curl_free(password);
    curl_url_cleanup(u);
    return rv;
}

rf_err
rf_ssrf_check_url(const rf_ssrf_policy *p, const char *url, rf_ssrf_target *out, char *err,
                  size_t err_len)
{
    struct addrinfo hints, *res = NULL;
    unsigned char probe[16];
    rf_err rv;
    int gai;

    memset(out, 0, sizeof(*out));
    rv = url_parts(url, out, err, err_len);
    if (rv != RF_OK) {
        return rv;
    }
    out->host_is_ip =
        inet_pton(AF_INET, out->host, probe) == 1 || inet_pton(AF_INET6, out->host, probe) == 1;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = out->host_is_ip ? AI_NUMERICHOST : 0;
    gai = getaddrinfo(out->host, NULL, &hints, &res);
    if (gai != 0 || res == NULL) {
        rf_errf(err, err_len, "host %s does not resolve: %s", out->host, gai_strerror(gai));
        rv = RF_ENOTFOUND;
        goto out;
    }
    rv = RF_ENOTFOUND;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        const char *why = NULL;
        char text[64];

        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) {
            continue;
        }
        addr_to_text(ai->ai_addr, text, sizeof(text));
        if (!rf_ssrf_addr_allowed(p, out->host, ai->ai_addr, &why)) {
            rf_errf(err, err_len, "host %s resolves to %s (%s), which is not allowed", out->host,
                    text, why);
            rv = RF_ECONFLICT;
            goto out;
        }
        if (rv != RF_OK) {
            /* Pin the first address: getaddrinfo sorted them (RFC 6724). */
            rf_strlcpy(out->addr, text, sizeof(out->addr));
            rv = RF_OK;
        }
    }
    if (rv != RF_OK) {
        rf_errf(err, err_len, "host %s has no IPv4 or IPv6 address", out->host);
    }
out:
    if (res != NULL) {
        freeaddrinfo(res);
    }
    return rv;
}

/* ---- pinning into libcurl ---- */

static bool
same_ip(const char *a, const char *b)
{
    unsigned char x[16], y[16];

    if (a == NULL || b == NULL) {
        return false;
    }
    if (inet_pton(AF_INET, a, x) == 1) {
        return inet_pton(AF_INET, b, y) == 1 && memcmp(x, y, 4) == 0;
    }
    if (inet_pton(AF_INET6, a, x) == 1) {
        return inet_pton(AF_INET6, b, y) == 1 && memcmp(x, y, 16) == 0;
    }
    return false;
}

static int
prereq_check(void *clientp, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
             int conn_local_port)
{
    rf_ssrf_pin *pin = clientp;

    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    if (same_ip(conn_primary_ip, pin->target.addr)) {
        return CURL_PREREQFUNC_OK;
    }
    pin->refused = true;
    rf_strlcpy(pin->refused_ip, conn_primary_ip != NULL ? conn_primary_ip : "",
               sizeof(pin->refused_ip));
    rf_warn("ssrf: connected to %s, not the vetted %s for %s; aborting", pin->refused_ip,
            pin->target.addr, pin->target.host);
    return CURL_PREREQFUNC_ABORT;
}

rf_err
rf_ssrf_pin_apply(CURL *h, const rf_ssrf_target *t, rf_ssrf_pin *pin)
{
    char entry[400];
    bool v6 = strchr(t->addr, ':') != NULL;

    memset(pin, 0, sizeof(*pin));
    pin->target = *t;
    if (!t->host_is_ip) {
        if (rf_fmt(entry, sizeof(entry), v6 ? "%s:%d:[%s]" : "%s:%d:%s", t->host, t->port,
                   t->addr) != RF_OK) {
            return RF_EINVAL;
        }
        pin->resolve = curl_slist_append(NULL, entry);
        if (pin->resolve == NULL) {
            return RF_ENOMEM;
        }
        curl_easy_setopt(h, CURLOPT_RESOLVE, pin->resolve);
    }
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    /* An environment proxy would make the proxy the peer and hide the real
     * target from the check: no proxy at all. */
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    if (curl_easy_setopt(h, CURLOPT_PREREQDATA, pin) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, prereq_check) != CURLE_OK) {
        rf_ssrf_pin_clear(pin);
        return RF_EUNSUPPORTED;
    }
    return RF_OK;
}

void
rf_ssrf_pin_clear(rf_ssrf_pin *pin)
{
    if (pin == NULL) {
        return;
    }
    curl_slist_free_all(pin->resolve);
    pin->resolve = NULL;
}
