/* Idempotency records over the store. */
#include "idempotency.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "rf_log.h"

bool
rf_idem_key_valid(const char *key)
{
    size_t n = key != NULL ? strlen(key) : 0;

    if (n < 1 || n > RF_IDEM_KEY_MAX) {
        return false;
    }
    for (; *key != '\0'; key++) {
        if ((unsigned char)*key < 0x20 || (unsigned char)*key > 0x7e) {
            return false;
        }
    }
    return true;
}

rf_err
rf_idem_request_hash(const char *method, const char *path, const char *body, size_t len,
                     char hex[65])
{
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    char *canon = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_MD_CTX *ctx = NULL;
    rf_err rv = RF_OK;

    hex[0] = '\0';
    if (doc == NULL) {
        return RF_EINVAL;
    }
    canon = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(doc);
    ctx = EVP_MD_CTX_new();
    if (canon == NULL || ctx == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, method, strlen(method)) != 1 || EVP_DigestUpdate(ctx, "\n", 1) != 1 ||
        EVP_DigestUpdate(ctx, path, strlen(path)) != 1 || EVP_DigestUpdate(ctx, "\n", 1) != 1 ||
        EVP_DigestUpdate(ctx, canon, strlen(canon)) != 1 ||
        EVP_DigestFinal_ex(ctx, md, &md_len) != 1 || md_len != 32) {
        rv = RF_ENOMEM;
        goto out;
    }
    for (unsigned int i = 0; i < md_len; i++) {
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
out:
    EVP_MD_CTX_free(ctx);
    free(canon);
    return rv;
}

void
rf_idem_hit_clear(rf_idem_hit *hit)
{
    if (hit == NULL) {
        return;
    }
    free(hit->body);
    memset(hit, 0, sizeof(*hit));
}

static void
copy(char *dst, const char *src, size_t len)
{
    snprintf(dst, len, "%s", src != NULL ? src : "");
}

rf_err
rf_idem_begin(rf_store *st, const char *tenant, const char *key, const char *hash, int64_t now_ms,
              int64_t ttl_ms, int64_t inflight_ms, rf_idem_verdict *v, rf_idem_hit *hit)
{
    rf_idem_rec rec;
    bool fresh_insert = false;
    rf_err rv;

    memset(hit, 0, sizeof(*hit));
    *v = RF_IDEM_PROCEED;
    rv = rf_store_begin(st);
    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_idem_get(st, tenant, key, &rec);
    if (rv == RF_ENOTFOUND) {
        fresh_insert = true;
        rv = RF_OK;
    } else if (rv == RF_OK) {
        bool expired = rec.created_at < now_ms - ttl_ms;
        bool abandoned =
            strcmp(rec.state, "in_flight") == 0 && rec.updated_at < now_ms - inflight_ms;
        if (expired || abandoned) {
            /* Taken over as if new: an expired key is a new key. */
            rf_info("idempotency: key of tenant %s %s; reusing it", tenant,
                    expired ? "expired" : "was abandoned in flight");
        } else if (strcmp(rec.request_hash, hash) != 0) {
            *v = RF_IDEM_MISMATCH;
        } else if (strcmp(rec.state, "in_flight") == 0) {
            *v = RF_IDEM_IN_FLIGHT;
        } else {
            *v = RF_IDEM_REPLAY;
            hit->status = rec.status != 0 ? rec.status : 201;
            hit->body = rec.response_body; /* moved */
            rec.response_body = NULL;
            copy(hit->job_id, rec.job_id, sizeof(hit->job_id));
        }
    }
    if (rv == RF_OK && *v == RF_IDEM_PROCEED) {
        rf_idem_rec nrec;
        memset(&nrec, 0, sizeof(nrec));
        copy(nrec.tenant, tenant, sizeof(nrec.tenant));
        copy(nrec.key, key, sizeof(nrec.key));
        copy(nrec.request_hash, hash, sizeof(nrec.request_hash));
        copy(nrec.state, "in_flight", sizeof(nrec.state));
        nrec.created_at = now_ms;
        nrec.updated_at = now_ms;
        rv = fresh_insert ? rf_store_idem_insert(st, &nrec) : rf_store_idem_update(st, &nrec);
    }
    if (!fresh_insert) {
        rf_idem_rec_clear(&rec);
    }
    if (rv != RF_OK) {
        rf_store_rollback(st);
        rf_idem_hit_clear(hit);
        return rv;
    }
    rv = rf_store_commit(st);
    if (rv != RF_OK) {
        rf_idem_hit_clear(hit);
    }
    return rv;
}

rf_err
rf_idem_attach_job(rf_store *st, const char *tenant, const char *key, const char *job_id,
                   int64_t now_ms)
{
    rf_idem_rec rec;
    rf_err rv = rf_store_idem_get(st, tenant, key, &rec);

    if (rv != RF_OK) {
        return rv;
    }
    copy(rec.state, "created", sizeof(rec.state));
    copy(rec.job_id, job_id, sizeof(rec.job_id));
    rec.updated_at = now_ms;
    rv = rf_store_idem_update(st, &rec);
    rf_idem_rec_clear(&rec);
    return rv;
}

rf_err
rf_idem_complete(rf_store *st, const char *tenant, const char *key, int status, const char *body,
                 int64_t now_ms)
{
    rf_idem_rec rec;
    rf_err rv = rf_store_begin(st);

    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_idem_get(st, tenant, key, &rec);
    if (rv == RF_OK) {
        free(rec.response_body);
        rec.response_body = strdup(body);
        if (rec.response_body == NULL) {
            rv = RF_ENOMEM;
        }
    }
    if (rv == RF_OK) {
        copy(rec.state, "done", sizeof(rec.state));
        rec.status = status;
        rec.updated_at = now_ms;
        rv = rf_store_idem_update(st, &rec);
    }
    rf_idem_rec_clear(&rec);
    if (rv != RF_OK) {
        rf_store_rollback(st);
        return rv;
    }
    return rf_store_commit(st);
}

rf_err
rf_idem_abort(rf_store *st, const char *tenant, const char *key)
{
    rf_err rv = rf_store_begin(st);

    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_idem_delete(st, tenant, key);
    if (rv != RF_OK) {
        rf_store_rollback(st);
        return rv;
    }
    return rf_store_commit(st);
}

rf_err
rf_idem_purge(rf_store *st, int64_t now_ms, int64_t ttl_ms, size_t *n)
{
    rf_err rv = rf_store_begin(st);

    if (n != NULL) {
        *n = 0;
    }
    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_idem_purge(st, now_ms - ttl_ms, n);
    if (rv != RF_OK) {
        rf_store_rollback(st);
        return rv;
    }
    return rf_store_commit(st);
}
