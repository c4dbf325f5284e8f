/* SSRF guard for outgoing requests to user-supplied URLs (webhook
 * callback_url). The rules follow the OWASP SSRF cheat sheet, case 2:
 *
 *   - only http and https;
 *   - the host is resolved (A and AAAA) and EVERY address must be allowed,
 *     so a name that resolves to one public and one private address is
 *     refused;
 *   - refused ranges (unless the operator allows them, see below): IPv4
 *     0/8, 10/8, 100.64/10 (CGNAT), 127/8, 169.254/16 (link-local, cloud
 *     metadata 169.254.169.254), 172.16/12, 192.0.0/24, 192.0.2/24,
 *     192.168/16, 198.18/15, 198.51.100/24, 203.0.113/24, 224/4 (multicast),
 *     240/4 and broadcast; IPv6 ::, ::1, ::/96 (IPv4-compatible), 100::/64,
 *     2001:db8::/32, fc00::/7 (unique local), fe80::/10 (link-local),
 *     fec0::/10, ff00::/8 (multicast); IPv4-mapped (::ffff:0:0/96), NAT64
 *     (64:ff9b::/96) and 6to4 (2002::/16) addresses are judged by the IPv4
 *     address they embed;
 *   - the vetted address is pinned for the transfer (CURLOPT_RESOLVE) so DNS
 *     cannot change between the check and the connect (DNS rebinding), and
 *     CURLOPT_PREREQFUNCTION aborts the request if the connected peer is not
 *     that address;
 *   - redirects are never followed by libcurl itself; a caller that follows
 *     one re-checks the new URL with rf_ssrf_check_url.
 *
 * The allow list (operator config) is a comma- or space-separated list of
 * CIDRs ("10.1.0.0/16", "fd00::/8"), single addresses ("127.0.0.1") and
 * host names ("hooks.internal"). An address inside an allowed CIDR, or any
 * address of an allowed host name, passes even if it is in a refused range.
 * Everything here is thread-safe once the policy is built (read-only). */
#ifndef RF_SSRF_H
#define RF_SSRF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "rf_err.h"

typedef struct rf_ssrf_policy rf_ssrf_policy;

/* One vetted URL: what rf_ssrf_check_url found and what the transfer must
 * use. addr is the pinned address in numeric form (no brackets). */
typedef struct rf_ssrf_target {
    char scheme[8];  /* "http" or "https" */
    char host[256];  /* host as libcurl will use it (IPv6 without brackets) */
    int port;        /* explicit or the scheme's default */
    char addr[64];   /* the vetted address the connection must reach */
    bool host_is_ip; /* the URL named an address, no DNS involved */
} rf_ssrf_target;

/* Parses an allow list (NULL or "" = nothing extra allowed). RF_EINVAL with
 * a message in err for a malformed entry. The policy is freed with
 * rf_ssrf_policy_free. */
rf_err rf_ssrf_policy_new(const char *allow_list, rf_ssrf_policy **out, char *err, size_t err_len);

/* NULL-safe; sets *p = NULL. */
void rf_ssrf_policy_free(rf_ssrf_policy **p);

/* Names the refused range sa falls in ("loopback", "private",
 * "link-local", ...), or returns NULL for an address that is publicly
 * routable. Ignores any allow list. */
const char *rf_ssrf_classify(const struct sockaddr *sa);

/* True when sa may be contacted under policy p (p may be NULL: no allow
 * list). host, if not NULL, is the name the address came from (for
 * host-name allow entries). On refusal *why (if why is not NULL) is set to
 * the range name, a string literal. */
bool rf_ssrf_addr_allowed(const rf_ssrf_policy *p, const char *host, const struct sockaddr *sa,
                          const char **why);

/* Checks url and fills *out. RF_EINVAL: not a valid http(s) URL, or it
 * carries user:password credentials. RF_ENOTFOUND: the host does not
 * resolve. RF_ECONFLICT: a resolved address is refused. err gets a message
 * either way. Blocking (getaddrinfo): call it from a worker thread. */
rf_err rf_ssrf_check_url(const rf_ssrf_policy *p, const char *url, rf_ssrf_target *out, char *err,
                         size_t err_len);

/* State of one pinned transfer; lives as long as the CURL handle uses it. */
typedef struct rf_ssrf_pin {
    rf_ssrf_target target;
    struct curl_slist *resolve; /* CURLOPT_RESOLVE list, owned */
    bool refused;               /* set by the prereq check when it aborted */
    char refused_ip[64];        /* the peer that was refused */
} rf_ssrf_pin;

/* Applies the guard to handle h for target t: CURLOPT_RESOLVE pins the
 * vetted address, CURLOPT_PREREQFUNCTION compares the connected peer with
 * it, protocols are limited to http/https, redirects and proxies are off.
 * pin must stay valid (and unmoved) until the transfer is done; release it
 * with rf_ssrf_pin_clear. RF_ENOMEM / RF_EUNSUPPORTED (libcurl without
 * CURLOPT_PREREQFUNCTION) on failure. */
rf_err rf_ssrf_pin_apply(CURL *h, const rf_ssrf_target *t, rf_ssrf_pin *pin);

/* Frees the resolve list; NULL-safe and idempotent. */
void rf_ssrf_pin_clear(rf_ssrf_pin *pin);

#endif
