/* Template handlers: the built-ins and the tenant's custom templates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "custom_templates.h"
#include "rf_log.h"
#include "rf_util.h"
#include "templates.h"

int
rf_h_templates_list(rf_req *r)
{
    rf_tpl_rec *recs = NULL;
    size_t n = 0;
    json_t *list;
    rf_err rv = rf_ctpl_list(r->api->st, rf_api_tenant(r), &recs, &n);

    if (rv != RF_OK) {
        return rf_api_reply_internal(r, rv);
    }
    list = json_array();
    for (size_t i = 0; list != NULL && i < rf_template_count(); i++) {
        json_array_append_new(list, rf_builtin_template_json(rf_template_at(i)));
    }
    for (size_t i = 0; list != NULL && i < n; i++) {
        json_array_append_new(list, rf_ctpl_json(&recs[i]));
    }
    rf_tpl_recs_free(recs, n);
    return rf_api_reply_ok(r, 200, json_pack("{s:o}", "templates", list), NULL);
}

int
rf_h_template_get(rf_req *r)
{
    const rf_template *b = rf_template_find(r->params[0]);
    rf_tpl_rec rec;
    json_t *out;
    rf_err rv;

    if (b != NULL) {
        return rf_api_reply_ok(r, 200, rf_builtin_template_json(b), NULL);
    }
    rv = rf_ctpl_get(r->api->st, rf_api_tenant(r), r->params[0], &rec);
    if (rv == RF_ENOTFOUND) {
        char what[200];
        snprintf(what, sizeof(what), "template '%.128s'", r->params[0]);
        return rf_api_reply_not_found(r, what);
    }
    if (rv != RF_OK) {
        return rf_api_reply_internal(r, rv);
    }
    out = rf_ctpl_json(&rec);
    rf_tpl_rec_clear(&rec);
    return rf_api_reply_ok(r, 200, out, NULL);
}

int
rf_h_templates_create(rf_req *r)
{
    rf_tpl_rec rec;
    rf_verr verr;
    char *body = NULL;
    size_t len = 0;
    char location[256];
    int64_t now = rf_now_ms();
    int status;
    rf_err rv;

    memset(&verr, 0, sizeof(verr));
    status = rf_api_read_body(r, &body, &len);
    if (status != 0) {
        return status;
    }
    rv = rf_ctpl_parse(body, len, &rec, &verr);
    free(body);
    if (rv == RF_EINVAL) {
        return rf_api_reply_verr(r, 400, &verr);
    }
    if (rv != RF_OK) {
        return rf_api_reply_internal(r, rv);
    }
    snprintf(rec.tenant, sizeof(rec.tenant), "%s", rf_api_tenant(r));
    snprintf(rec.created_by, sizeof(rec.created_by), "%s", r->who.sub);
    rec.created_at = now;
    rec.updated_at = now;
    rv = rf_ctpl_create(r->api->st, &rec);
    if (rv == RF_ECONFLICT) {
        char msg[160];
        snprintf(msg, sizeof(msg), "template '%s' already exists%s", rec.id,
                 rf_template_find(rec.id) != NULL ? " (a built-in)" : "");
        status = rf_api_reply_error(r, 409, "conflict", msg,
                                    json_pack("{s:s}", "template_id", rec.id), NULL);
        rf_tpl_rec_clear(&rec);
        return status;
    }
    if (rv != RF_OK) {
        rf_tpl_rec_clear(&rec);
        return rf_api_reply_internal(r, rv);
    }
    rf_info("template %s created for tenant %s by %s", rec.id, rec.tenant, rec.created_by);
    snprintf(location, sizeof(location), "Location: /api/%stemplates/%s\r\n",
             r->style == RF_STYLE_V1 ? "v1/" : "", rec.id);
    status = rf_api_reply_ok(r, 201, rf_ctpl_json(&rec), location);
    rf_tpl_rec_clear(&rec);
    return status;
}
