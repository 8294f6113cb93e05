/* core/api/tokens_api.c - TokenRequest (`kubectl create token SA`): a
 * ServiceAccount token signed by the server, for an audience and a time,
 * answered and never stored. */
#define _GNU_SOURCE /* strptime, timegm */
#include "api/apiserver_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/object_meta.h"
#include "object/protobuf.h"
#include "security/tokens.h"
#include "util/base64.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <skiff/objects.h>

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
    if (!c->req->content_type || !*c->req->content_type) {
        status_reply(c->resp, 415, "UnsupportedMediaType", NULL,
                     "the request body has no Content-Type: send application/json");
        goto done;
    }
    if (strstr(c->req->content_type, "protobuf"))
        req = k8s_protobuf_decode(c->req->body, c->req->body_len, err, sizeof err);
    else if (c->req->body_obj)
        req = json_incref(c->req->body_obj);
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
    json_t *es = json_object_get(spec, "expirationSeconds");
    if ((es && !json_is_null(es) && !json_is_integer(es)) ||
        (json_object_get(spec, "boundObjectRef") &&
         !json_is_null(json_object_get(spec, "boundObjectRef")))) {
        json_decref(sa);
        status_reply(c->resp, 422, "Invalid", status_details(c->kind, c->name),
                     "TokenRequest.authentication.k8s.io \"%s\" is invalid: %s", c->name,
                     es && !json_is_integer(es) && !json_is_null(es)
                         ? "spec.expirationSeconds: Invalid value: must be an integer"
                         : "spec.boundObjectRef: Unsupported value: tokens bound to an object "
                           "are not issued yet (leave boundObjectRef out)");
        goto done;
    }
    json_int_t secs = json_integer_value(es);
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
    json_t *out_spec = json_is_object(spec) ? skiff_json_copy(spec) : json_object();
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

/* A bootstrap token "<id>.<secret>" ([a-z0-9]{6}.[a-z0-9]{16}). */
static int bootstrap_shaped(const char *tok)
{
    if (strlen(tok) != 23 || tok[6] != '.') return 0;
    for (int i = 0; i < 23; i++) {
        if (i == 6) continue;
        char ch = tok[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))) return 0;
    }
    return 1;
}

static char *data_field(const json_t *secret, const char *key)
{
    const char *b = json_string_value(json_object_get(json_object_get(secret, "data"), key));
    size_t n;
    return b ? (char *)base64_decode(b, strlen(b), 0, &n) : NULL;
}

/* auth-extra-groups: comma-separated, each ^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$ */
static int extra_groups_valid(const char *list)
{
    static const char prefix[] = "system:bootstrappers:";
    const char *g = list;
    while (*g) {
        while (*g == ' ') g++;
        size_t n = strcspn(g, ",");
        size_t end = n;
        while (end > 0 && g[end - 1] == ' ') end--;
        if (end <= sizeof prefix - 1 || strncmp(g, prefix, sizeof prefix - 1) != 0 ||
            end - (sizeof prefix - 1) > 256)
            return 0;
        for (size_t i = sizeof prefix - 1; i < end; i++) {
            char ch = g[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == ':' || ch == '-'))
                return 0;
        }
        char last = g[end - 1];
        if (last == ':' || last == '-') return 0;
        g += n;
        if (*g == ',') g++;
    }
    return 1;
}

int api_bootstrap_authenticate(void *data, const char *tok, token_identity_t *out, char *err,
                               size_t errlen)
{
    api_server_t *s = data;
    if (!bootstrap_shaped(tok)) return 1; /* not a bootstrap token: ask others */
    const kind_def_t *k = registry_find_resource("", "v1", "secrets");
    watch_cache_t *c = k ? api_cache_for(s, k) : NULL;
    char key[64];
    snprintf(key, sizeof key, "kube-system/bootstrap-token-%.6s", tok);
    cache_obj_t *o = c ? watch_cache_get(c, key) : NULL;
    if (!o) {
        snprintf(err, errlen, "unknown bootstrap token");
        return -1;
    }
    json_t *secret = cache_obj_decode(o);
    char *sec = data_field(secret, "token-secret");
    char *usage = data_field(secret, "usage-bootstrap-authentication");
    char *expiration = data_field(secret, "expiration");
    char *extra = data_field(secret, "auth-extra-groups");
    char *tid = data_field(secret, "token-id");
    const char *type = json_string_value(json_object_get(secret, "type"));
    int rc = -1;
    if (!type || strcmp(type, "bootstrap.kubernetes.io/token") != 0 || !sec ||
        strlen(sec) != 16 || CRYPTO_memcmp(sec, tok + 7, 16) != 0) {
        snprintf(err, errlen, "invalid bootstrap token");
    } else if (!tid || strncmp(tid, tok, 6) != 0 || tid[6]) {
        snprintf(err, errlen, "invalid bootstrap token");
    } else if (extra && !extra_groups_valid(extra)) {
        /* as Kubernetes: only groups under system:bootstrappers: (a token
         * must never make its holder system:masters) */
        snprintf(err, errlen, "invalid bootstrap token");
    } else if (!usage || strcmp(usage, "true") != 0) {
        snprintf(err, errlen, "the bootstrap token may not be used to authenticate");
    } else if (expiration && *expiration) {
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        if (!strptime(expiration, "%Y-%m-%dT%H:%M:%SZ", &tm) || timegm(&tm) <= time(NULL))
            snprintf(err, errlen, "the bootstrap token has expired");
        else
            rc = 0;
    } else {
        rc = 0;
    }
    if (rc == 0) {
        memset(out, 0, sizeof *out);
        snprintf(out->user, sizeof out->user, "system:bootstrap:%.6s", tok);
        snprintf(out->groups_buf, sizeof out->groups_buf, "system:bootstrappers%s%s",
                 extra && *extra ? "," : "", extra ? extra : "");
        for (char *g = out->groups_buf, *save = NULL; out->ngroups < TOKENS_MAX_GROUPS;) {
            char *p = strtok_r(g, ",", &save);
            g = NULL;
            if (!p) break;
            out->groups[out->ngroups++] = p;
        }
        out->groups[out->ngroups] = NULL;
    }
    if (sec) OPENSSL_cleanse(sec, strlen(sec));
    free(sec);
    free(usage);
    free(expiration);
    free(extra);
    free(tid);
    json_decref(secret);
    return rc;
}
