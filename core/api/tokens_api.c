/* core/api/tokens_api.c - TokenRequest (`kubectl create token SA`): a
 * ServiceAccount token signed by the server, for an audience and a time,
 * answered and never stored. */
#include "api/apiserver_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/object_meta.h"
#include "object/protobuf.h"
#include "security/tokens.h"

int api_service_account_exists(void *data, const char *ns, const char *name, const char *uid)
{
    api_server_t *s = data;
    const kind_def_t *k = registry_find_resource("", "v1", "serviceaccounts");
    watch_cache_t *c = k ? api_cache_for(s, k) : NULL;
    char key[600];
    snprintf(key, sizeof key, "%s/%s", ns, name);
    cache_obj_t *o = c ? watch_cache_get(c, key) : NULL;
    if (!o) return 0;
    json_t *sa = cache_obj_decode(o);
    const char *u = api_meta_str(sa, "uid");
    int same = u && strcmp(u, uid) == 0;
    json_decref(sa);
    return same;
}

void api_handle_token_request(api_call_t *c)
{
    const tokens_t *t = c->srv->pipeline.tokens;
    if (!t) {
        status_reply(c->resp, 404, "NotFound", NULL, "this server issues no tokens");
        goto done;
    }
    /* kubectl sends the TokenRequest as protobuf; other clients as JSON */
    json_t *req = NULL;
    char err[512];
    if (c->req->content_type && strstr(c->req->content_type, "protobuf"))
        req = k8s_protobuf_decode(c->req->body, c->req->body_len, err, sizeof err);
    else if (c->req->body)
        req = json_loadb(c->req->body, c->req->body_len, 0, NULL);
    if (!json_is_object(req)) {
        status_reply(c->resp, 400, "BadRequest", NULL,
                     "the body must be an authentication.k8s.io/v1 TokenRequest");
        json_decref(req);
        goto done;
    }
    c->obj = req;
    char key[600];
    snprintf(key, sizeof key, "%s/%s", c->ns ? c->ns : "", c->name);
    watch_cache_t *sc = c->cache;
    cache_obj_t *o = sc ? watch_cache_get(sc, key) : NULL;
    if (!o) {
        api_not_found(c, c->name);
        goto done;
    }
    json_t *sa = cache_obj_decode(o);
    const char *uid = api_meta_str(sa, "uid");
    json_t *spec = json_object_get(req, "spec");
    json_int_t secs = json_integer_value(json_object_get(spec, "expirationSeconds"));
    if (secs == 0) secs = 3600;
    if (secs < 600 || secs > 365 * 24 * 3600) {
        json_decref(sa);
        status_reply(c->resp, 422, "Invalid", status_details(c->kind, c->name),
                     "TokenRequest.authentication.k8s.io \"%s\" is invalid: "
                     "spec.expirationSeconds: Invalid value: %lld: may not be specified less "
                     "than 10 minutes or more than a year",
                     c->name, (long long)secs);
        goto done;
    }
    const char *aud[17];
    size_t na = 0;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(spec, "audiences"), i, a) if (na < 16 && json_string_value(a)) aud[na++] = json_string_value(a);
    aud[na] = NULL;
    int64_t exp = 0;
    char *jwt = tokens_issue(t, c->ns, c->name, uid ? uid : "", na ? aud : NULL, secs, &exp);
    json_decref(sa);
    if (!jwt) {
        status_reply(c->resp, 500, "InternalError", NULL, "could not sign the token");
        goto done;
    }
    char ts[32], now[32];
    api_rfc3339((time_t)exp, ts, sizeof ts);
    api_now_rfc3339(now, sizeof now);
    json_t *out_spec = json_is_object(spec) ? json_deep_copy(spec) : json_object();
    json_object_set_new(out_spec, "expirationSeconds", json_integer(secs));
    if (!json_object_get(out_spec, "audiences")) json_object_set_new(out_spec, "audiences", json_array());
    json_t *out = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:o, s:{s:s, s:s}}", "kind",
                            "TokenRequest", "apiVersion", "authentication.k8s.io/v1", "metadata",
                            "name", c->name, "namespace", c->ns ? c->ns : "",
                            "creationTimestamp", now, "spec", out_spec, "status", "token", jwt,
                            "expirationTimestamp", ts);
    memset(jwt, 0, strlen(jwt));
    free(jwt);
    reply_json(c->resp, 201, out);
    json_decref(out);
done:
    api_call_free(c);
}
