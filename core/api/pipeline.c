/* core/api/pipeline.c - limits and audit around every request.
 *
 * The handler answers through a proxy sink: the proxy sees the status code
 * and the end of the answer (whole or streamed) and then ends the audit
 * event and gives the limits ticket back. */
#include "api/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct piped {
    api_response_t proxy; /* first: what the handler holds */
    api_response_t *real;
    const api_pipeline_t *pl;
    audit_event_t *ev;
    limits_ticket_t ticket;
    int code;
} piped_t;

static void piped_finish(piped_t *p, const char *body, size_t len)
{
    if (p->ev) audit_event_end(p->pl->audit, p->ev, p->code, body, len);
    if (p->pl->limits) limits_release(p->pl->limits, &p->ticket);
    free(p);
}

static void px_send(api_response_t *r, int status, const char *ct, const char *body, size_t len)
{
    piped_t *p = (piped_t *)r;
    p->code = status;
    p->real->on_abort = NULL;
    p->real->extra_headers = r->extra_headers;
    p->real->ops->send(p->real, status, ct, body, len);
    piped_finish(p, body, len);
}

static void px_stream_begin(api_response_t *r, int status, const char *ct)
{
    piped_t *p = (piped_t *)r;
    p->code = status;
    p->real->extra_headers = r->extra_headers;
    if (p->ev) audit_event_response_started(p->pl->audit, p->ev, status);
    p->real->ops->stream_begin(p->real, status, ct);
}

static int px_stream_write(api_response_t *r, const char *data, size_t len)
{
    piped_t *p = (piped_t *)r;
    return p->real->ops->stream_write(p->real, data, len);
}

static void px_stream_end(api_response_t *r)
{
    piped_t *p = (piped_t *)r;
    p->real->on_abort = NULL;
    p->real->ops->stream_end(p->real);
    piped_finish(p, NULL, 0);
}

static const api_response_ops_t proxy_ops = {
    .send = px_send,
    .stream_begin = px_stream_begin,
    .stream_write = px_stream_write,
    .stream_end = px_stream_end,
};

/* The peer went away: tell the handler through the proxy. */
static void on_real_abort(api_response_t *real, void *data)
{
    piped_t *p = data;
    if (p->proxy.on_abort) p->proxy.on_abort(&p->proxy, p->proxy.abort_data);
}

static int query_flag(const char *query, const char *name)
{
    size_t n = strlen(name);
    for (const char *q = query; q && *q;) {
        if (strncmp(q, name, n) == 0 && q[n] == '=')
            return strncmp(q + n + 1, "true", 4) == 0 || q[n + 1] == '1';
        q = strchr(q, '&');
        if (q) q++;
    }
    return 0;
}

api_response_t *api_pipeline_enter(const api_pipeline_t *pl, const api_request_t *req,
                                   const api_path_t *path, api_response_t *resp)
{
    if (!pl || (!pl->audit && !pl->limits)) return resp;
    /* Who is asking: the verified client certificate; over the plain-HTTP
     * development listener there is no identity and every request acts as
     * the cluster administrator. */
    static const char *const admin_groups[] = {"system:masters", "system:authenticated", NULL};
    const char *user = req->tls_user ? req->tls_user : "system:admin";
    const char *const *groups = req->tls_user ? req->tls_groups : admin_groups;
    size_t ngroups = 0;
    while (groups && groups[ngroups]) ngroups++;
    int watch = query_flag(req->query, "watch");
    const char *verb = api_path_verb(path, req->method, watch);

    piped_t *p = calloc(1, sizeof *p);
    if (!p) return resp; /* no bookkeeping rather than no answer */
    p->pl = pl;
    p->real = resp;
    p->proxy.ops = &proxy_ops;
    int master = 0;
    for (size_t i = 0; i < ngroups; i++)
        if (strcmp(groups[i], "system:masters") == 0) master = 1;
    if (pl->limits && !master) {
        /* as in Kubernetes, system:masters is exempt (it must be able to
         * repair a cluster under load) */
        limits_kind_t kind = watch ? LIMITS_LONG_RUNNING
                             : (!strcmp(req->method, "GET") || !strcmp(req->method, "HEAD"))
                                 ? LIMITS_READONLY
                                 : LIMITS_MUTATING;
        char key[300];
        limits_client_key(user, NULL, key, sizeof key);
        limits_refusal_t why;
        if (limits_admit(pl->limits, key, kind, &p->ticket, &why) != 0) {
            char body[512], hdr[64];
            size_t n = limits_status_json(&why, body, sizeof body);
            snprintf(hdr, sizeof hdr, "Retry-After: %u\r\n", why.retry_after);
            resp->extra_headers = hdr;
            resp->ops->send(resp, 429, "application/json", body, n);
            free(p);
            return NULL;
        }
    }
    if (pl->audit) {
        audit_attrs_t attrs = {
            .username = user,
            .groups = groups,
            .n_groups = ngroups,
            .verb = verb,
            .resource_request = path->resource_request,
            .path = req->path,
            .api_group = path->group,
            .api_version = path->version,
            .resource = path->resource,
            .subresource = path->sub,
            .namespace_ = path->ns,
            .name = path->name,
        };
        char uri[2300];
        snprintf(uri, sizeof uri, "%s%s%s", req->path, req->query ? "?" : "",
                 req->query ? req->query : "");
        audit_request_info_t info = {.attrs = &attrs, .request_uri = uri,
                                     .user_agent = req->user_agent};
        p->ev = audit_event_begin(pl->audit, &info);
    }
    resp->on_abort = on_real_abort;
    resp->abort_data = p;
    return &p->proxy;
}
