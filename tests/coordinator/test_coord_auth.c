/* Bearer-token verification: a good token passes; every kind of bad token is
 * refused with a reason (alg none in its spellings, HS256 with the wrong
 * secret, an RS256-signed token, expired, not yet valid, issued in the
 * future, missing claims, malformed shapes), with the clock passed in. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "auth.h"
#include "b64url.h"

#define NOW 1800000000LL
#define SECRET "0123456789abcdef0123456789abcdef-test-secret"
#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static rf_auth_params
params(void)
{
    rf_auth_params p;

    memset(&p, 0, sizeof(p));
    p.secret = SECRET;
    p.secret_len = strlen(SECRET);
    p.leeway_s = 30;
    return p;
}

/* Builds header.payload.signature by hand: HMAC-SHA256 with secret, or
 * the given raw signature segment when sig != NULL. */
static char *
make_token(const char *header, const char *payload, const char *secret, const char *sig)
{
    char h[1024], pl[2048], s[128];
    char *out = malloc(4096);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;

    assert_non_null(out);
    assert_int_equal(rf_b64url_encode(header, strlen(header), h, sizeof(h)), RF_OK);
    assert_int_equal(rf_b64url_encode(payload, strlen(payload), pl, sizeof(pl)), RF_OK);
    snprintf(out, 4096, "%s.%s", h, pl);
    if (sig != NULL) {
        snprintf(s, sizeof(s), "%s", sig);
    } else {
        assert_non_null(HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)out,
                             strlen(out), mac, &mac_len));
        assert_int_equal(rf_b64url_encode(mac, mac_len, s, sizeof(s)), RF_OK);
    }
    snprintf(out + strlen(out), 4096 - strlen(out), ".%s", s);
    return out;
}

static char *
claims(const char *extra)
{
    char *c = malloc(1024);

    assert_non_null(c);
    snprintf(c, 1024,
             "{\"sub\":\"alice\",\"tenant\":\"acme\",\"scope\":\"jobs:read jobs:write\","
             "\"iat\":%lld,\"exp\":%lld%s%s}",
             NOW - 10, NOW + 600, extra[0] != '\0' ? "," : "", extra);
    return c;
}

/* Expects token to be refused with a reason containing want. */
static void
refused(const char *token, const char *want)
{
    rf_auth_params p = params();
    rf_principal who;
    char why[256] = "";

    assert_int_equal(rf_auth_verify(&p, token, NOW, &who, why, sizeof(why)), RF_EINVAL);
    if (strstr(why, want) == NULL) {
        fail_msg("reason '%s' does not mention '%s'", why, want);
    }
    assert_string_equal(who.tenant, "");
}

static void
test_good_token(void **state)
{
    rf_auth_params p = params();
    char *c = claims("\"nbf\":1799999990");
    char *t = make_token(HS256, c, SECRET, NULL);
    rf_principal who;
    char why[256] = "";

    (void)state;
    assert_int_equal(rf_auth_verify(&p, t, NOW, &who, why, sizeof(why)), RF_OK);
    assert_string_equal(who.sub, "alice");
    assert_string_equal(who.tenant, "acme");
    assert_int_equal(who.scopes, RF_SCOPE_JOBS_READ | RF_SCOPE_JOBS_WRITE);
    assert_int_equal(who.expires_at, NOW + 600);
    free(t);
    free(c);
}

static void
test_project_claim_and_no_typ(void **state)
{
    rf_auth_params p = params();
    char c[512];
    char *t;
    rf_principal who;

    (void)state;
    snprintf(c, sizeof(c), "{\"sub\":\"bob\",\"project\":\"proj-1\",\"exp\":%lld}", NOW + 5);
    t = make_token("{\"alg\":\"HS256\"}", c, SECRET, NULL);
    assert_int_equal(rf_auth_verify(&p, t, NOW, &who, NULL, 0), RF_OK);
    assert_string_equal(who.tenant, "proj-1");
    assert_int_equal(who.scopes, 0); /* no scope claim: no scopes */
    free(t);
}

static void
test_alg_none_refused(void **state)
{
    char *c = claims("");
    const char *const headers[] = {"{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"alg\":\"None\"}",
                                   "{\"alg\":\"NONE\"}", "{\"alg\":\"hs256\"}",
                                   "{\"typ\":\"JWT\"}"};

    (void)state;
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        /* with an empty signature (the classic attack) and with a valid HMAC */
        char *unsigned_tok = make_token(headers[i], c, SECRET, "");
        char *signed_tok = make_token(headers[i], c, SECRET, NULL);
        refused(unsigned_tok, "unsigned");
        refused(signed_tok, i < 4 ? "not accepted" : "no alg");
        free(unsigned_tok);
        free(signed_tok);
    }
    free(c);
}

static void
test_wrong_secret_refused(void **state)
{
    char *c = claims("");
    char *t = make_token(HS256, c, "another-secret-another-secret-another", NULL);

    (void)state;
    refused(t, "signature");
    free(t);
    free(c);
}

static void
test_tampered_payload_refused(void **state)
{
    char *c = claims("");
    char *t = make_token(HS256, c, SECRET, NULL);
    char *c2 = claims("\"extra\":\"x\"");
    char *t2 = make_token(HS256, c2, SECRET, NULL);
    char forged[4096];
    const char *sig1 = strrchr(t, '.');
    const char *sig2 = strrchr(t2, '.');

    (void)state;
    /* payload of t2 with the signature of t */
    snprintf(forged, sizeof(forged), "%.*s%s", (int)(sig2 - t2), t2, sig1);
    refused(forged, "signature");
    free(t);
    free(t2);
    free(c);
    free(c2);
}

/* A real RS256 token signed with a fresh RSA key (libjwt), presented to a
 * verifier that only knows the HMAC secret. */
static void
test_rs256_refused(void **state)
{
    EVP_PKEY *key = EVP_RSA_gen(2048);
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    long pem_len;
    jwt_t *jwt = NULL;
    char *t;

    (void)state;
    assert_non_null(key);
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), 1);
    pem_len = BIO_get_mem_data(bio, &pem);
    assert_true(pem_len > 0);
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grant(jwt, "sub", "mallory"), 0);
    assert_int_equal(jwt_add_grant(jwt, "tenant", "acme"), 0);
    assert_int_equal(jwt_add_grant(jwt, "scope", "jobs:read jobs:write"), 0);
    assert_int_equal(jwt_add_grant_int(jwt, "exp", (long)(NOW + 600)), 0);
    assert_int_equal(jwt_set_alg(jwt, JWT_ALG_RS256, (const unsigned char *)pem, (int)pem_len), 0);
    t = jwt_encode_str(jwt);
    assert_non_null(t);
    refused(t, "RS256");
    free(t);
    jwt_free(jwt);
    BIO_free(bio);
    EVP_PKEY_free(key);
}

static void
test_time_claims(void **state)
{
    rf_auth_params p = params();
    rf_principal who;
    char c[512];
    char *t;

    (void)state;
    /* expired, beyond the leeway */
    snprintf(c, sizeof(c), "{\"sub\":\"a\",\"tenant\":\"t\",\"exp\":%lld}", NOW - 31);
    t = make_token(HS256, c, SECRET, NULL);
    refused(t, "expired");
    free(t);
    /* expired but within the 30 s leeway */
    snprintf(c, sizeof(c), "{\"sub\":\"a\",\"tenant\":\"t\",\"exp\":%lld}", NOW - 29);
    t = make_token(HS256, c, SECRET, NULL);
    assert_int_equal(rf_auth_verify(&p, t, NOW, &who, NULL, 0), RF_OK);
    free(t);
    /* no exp at all */
    t = make_token(HS256, "{\"sub\":\"a\",\"tenant\":\"t\"}", SECRET, NULL);
    refused(t, "no exp");
    free(t);
    /* exp of the wrong type */
    t = make_token(HS256, "{\"sub\":\"a\",\"tenant\":\"t\",\"exp\":\"never\"}", SECRET, NULL);
    refused(t, "not a number");
    free(t);
    /* not valid yet */
    snprintf(c, sizeof(c), "{\"sub\":\"a\",\"tenant\":\"t\",\"exp\":%lld,\"nbf\":%lld}", NOW + 900,
             NOW + 60);
    t = make_token(HS256, c, SECRET, NULL);
    refused(t, "not valid yet");
    free(t);
    /* issued in the future */
    snprintf(c, sizeof(c), "{\"sub\":\"a\",\"tenant\":\"t\",\"exp\":%lld,\"iat\":%lld}", NOW + 900,
             NOW + 120);
    t = make_token(HS256, c, SECRET, NULL);
    refused(t, "future");
    free(t);
}

static void
test_missing_identity_claims(void **state)
{
    char c[512];
    char *t;

    (void)state;
    snprintf(c, sizeof(c), "{\"sub\":\"a\",\"exp\":%lld}", NOW + 60);
    t = make_token(HS256, c, SECRET, NULL);
    refused(t, "tenant");
    free(t);
    snprintf(c, sizeof(c), "{\"sub\":\"a\",\"tenant\":\"../etc\",\"exp\":%lld}", NOW + 60);
    t = make_token(HS256, c, SECRET, NULL);
    refused(t, "tenant");
    free(t);
    snprintf(c, sizeof(c), "{\"tenant\":\"t\",\"exp\":%lld}", NOW + 60);
    t = make_token(HS256, c, SECRET, NULL);
    refused(t, "sub");
    free(t);
    snprintf(c, sizeof(c), "{\"sub\":\"\",\"tenant\":\"t\",\"exp\":%lld}", NOW + 60);
    t = make_token(HS256, c, SECRET, NULL);
    refused(t, "sub");
    free(t);
    snprintf(c, sizeof(c), "{\"sub\":\"a\",\"tenant\":\"t\",\"scope\":7,\"exp\":%lld}", NOW + 60);
    t = make_token(HS256, c, SECRET, NULL);
    refused(t, "scope");
    free(t);
}

static void
test_malformed_tokens(void **state)
{
    char *c = claims("");
    char *good = make_token(HS256, c, SECRET, NULL);
    char buf[4096];
    char *t;

    (void)state;
    refused("", "no token");
    refused("abc", "three segments");
    refused("a.b", "three segments");
    refused("a.b.c.d", "three segments");
    refused("..sig", "three segments");
    refused("!!!.e30.sig", "malformed");
    refused("e30.e30.sig", "no alg");             /* header {} */
    refused("bm90IGpzb24.e30.sig", "not a JSON"); /* "not json" */
    refused("W10.e30.sig", "not a JSON");         /* [] */
    /* a header with crit or jku */
    t = make_token("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", c, SECRET, NULL);
    refused(t, "crit");
    free(t);
    t = make_token("{\"alg\":\"HS256\",\"jku\":\"http://evil/keys\"}", c, SECRET, NULL);
    refused(t, "jku");
    free(t);
    t = make_token("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", c, SECRET, NULL);
    refused(t, "typ");
    free(t);
    /* too long */
    memset(buf, 'A', sizeof(buf) - 1);
    buf[sizeof(buf) - 1] = '\0';
    {
        char *big = malloc(RF_AUTH_TOKEN_MAX + 100);
        assert_non_null(big);
        memset(big, 'A', RF_AUTH_TOKEN_MAX + 10);
        memcpy(big + 100, ".", 1);
        memcpy(big + 200, ".", 1);
        big[RF_AUTH_TOKEN_MAX + 10] = '\0';
        refused(big, "longer than");
        free(big);
    }
    /* truncated signature */
    snprintf(buf, sizeof(buf), "%.*s", (int)strlen(good) - 3, good);
    refused(buf, "signature");
    free(good);
    free(c);
}

static void
test_issuer_and_audience(void **state)
{
    rf_auth_params p = params();
    rf_principal who;
    char c[512];
    char *t;

    (void)state;
    p.issuer = "https://issuer.example";
    p.audience = "renderfarm";
    snprintf(c, sizeof(c),
             "{\"sub\":\"a\",\"tenant\":\"t\",\"exp\":%lld,\"iss\":\"https://issuer.example\","
             "\"aud\":[\"other\",\"renderfarm\"]}",
             NOW + 60);
    t = make_token(HS256, c, SECRET, NULL);
    assert_int_equal(rf_auth_verify(&p, t, NOW, &who, NULL, 0), RF_OK);
    free(t);
    snprintf(c, sizeof(c),
             "{\"sub\":\"a\",\"tenant\":\"t\",\"exp\":%lld,\"iss\":\"https://evil\","
             "\"aud\":\"renderfarm\"}",
             NOW + 60);
    t = make_token(HS256, c, SECRET, NULL);
    assert_int_equal(rf_auth_verify(&p, t, NOW, &who, NULL, 0), RF_EINVAL);
    free(t);
    snprintf(c, sizeof(c),
             "{\"sub\":\"a\",\"tenant\":\"t\",\"exp\":%lld,\"iss\":\"https://issuer.example\"}",
             NOW + 60);
    t = make_token(HS256, c, SECRET, NULL);
    assert_int_equal(rf_auth_verify(&p, t, NOW, &who, NULL, 0), RF_EINVAL); /* no aud */
    free(t);
}

static void
test_mint_round_trip(void **state)
{
    rf_auth_params p = params();
    rf_principal who;
    char *t = NULL;

    (void)state;
    assert_int_equal(
        rf_auth_mint(&p, "carol", "tenant-9", "jobs:read templates:write bogus", 60, NOW, &t),
        RF_OK);
    assert_int_equal(rf_auth_verify(&p, t, NOW + 10, &who, NULL, 0), RF_OK);
    assert_string_equal(who.sub, "carol");
    assert_string_equal(who.tenant, "tenant-9");
    assert_int_equal(who.scopes, RF_SCOPE_JOBS_READ | RF_SCOPE_TEMPLATES_WRITE);
    /* and it expires */
    assert_int_equal(rf_auth_verify(&p, t, NOW + 60 + 31, &who, NULL, 0), RF_EINVAL);
    free(t);
    /* bad arguments */
    assert_int_equal(rf_auth_mint(&p, "", "t", "", 60, NOW, &t), RF_EINVAL);
    assert_int_equal(rf_auth_mint(&p, "a", "bad tenant", "", 60, NOW, &t), RF_EINVAL);
    assert_int_equal(rf_auth_mint(&p, "a", "t", "", 0, NOW, &t), RF_EINVAL);
    p.secret = "short";
    p.secret_len = 5;
    assert_int_equal(rf_auth_mint(&p, "a", "t", "", 60, NOW, &t), RF_EINVAL);
}

static void
test_bearer_and_scopes(void **state)
{
    const char *t = NULL;

    (void)state;
    assert_int_equal(rf_auth_bearer("Bearer abc.def.ghi", &t), RF_OK);
    assert_string_equal(t, "abc.def.ghi");
    assert_int_equal(rf_auth_bearer("bearer   x", &t), RF_OK);
    assert_string_equal(t, "x");
    assert_int_equal(rf_auth_bearer("Basic dXNlcjpwYXNz", &t), RF_EINVAL);
    assert_int_equal(rf_auth_bearer("Bearer ", &t), RF_EINVAL);
    assert_int_equal(rf_auth_bearer(NULL, &t), RF_EINVAL);
    assert_int_equal(rf_auth_scopes_parse("jobs:read  sheets:connect nope"),
                     RF_SCOPE_JOBS_READ | RF_SCOPE_SHEETS_CONNECT);
    assert_int_equal(rf_auth_scopes_parse(""), 0);
    assert_int_equal(rf_auth_scope_bit("templates:write"), RF_SCOPE_TEMPLATES_WRITE);
    assert_string_equal(rf_auth_scope_name(RF_SCOPE_JOBS_WRITE), "jobs:write");
    assert_true(rf_auth_tenant_valid("acme.prod-1_x"));
    assert_false(rf_auth_tenant_valid(""));
    assert_false(rf_auth_tenant_valid("a/b"));
}

static void
test_b64url(void **state)
{
    char enc[64], dec[64];
    size_t n = 0;

    (void)state;
    assert_int_equal(rf_b64url_encode("\xfb\xff", 2, enc, sizeof(enc)), RF_OK);
    assert_string_equal(enc, "-_8"); /* URL alphabet, no padding */
    assert_int_equal(rf_b64url_decode("-_8", 3, dec, sizeof(dec), &n), RF_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(dec, "\xfb\xff", 2);
    assert_int_equal(rf_b64url_decode("-_9", 3, dec, sizeof(dec), &n), RF_EINVAL); /* bits */
    assert_int_equal(rf_b64url_decode("a", 1, dec, sizeof(dec), &n), RF_EINVAL);
    assert_int_equal(rf_b64url_decode("a+b/", 4, dec, sizeof(dec), &n), RF_EINVAL);
    assert_int_equal(rf_b64url_decode("YWJj", 4, dec, 2, &n), RF_ETOOBIG);
    assert_int_equal(rf_b64url_encode("abc", 3, enc, 4), RF_ETOOBIG);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_token),
        cmocka_unit_test(test_project_claim_and_no_typ),
        cmocka_unit_test(test_alg_none_refused),
        cmocka_unit_test(test_wrong_secret_refused),
        cmocka_unit_test(test_tampered_payload_refused),
        cmocka_unit_test(test_rs256_refused),
        cmocka_unit_test(test_time_claims),
        cmocka_unit_test(test_missing_identity_claims),
        cmocka_unit_test(test_malformed_tokens),
        cmocka_unit_test(test_issuer_and_audience),
        cmocka_unit_test(test_mint_round_trip),
        cmocka_unit_test(test_bearer_and_scopes),
        cmocka_unit_test(test_b64url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
