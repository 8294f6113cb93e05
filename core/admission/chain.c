/* core/admission/chain.c - the admission chain: which modules run, in what
 * order, and what a denial looks like to the client.
 *
 * The order is kube-apiserver's: the built-ins in their fixed order, then
 * plugins loaded from the plugin directories (in the order named), then
 * ResourceQuota last, so that a quota is only charged for a request every
 * other module allowed. The order in which the options name modules does
 * not matter, as in Kubernetes. This file knows nothing about what any
 * module checks. */
#define _GNU_SOURCE
#include "admission/admission.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/errors.h>

#include "api/apiserver_int.h"
#include "api/object_meta.h"
#include "plugin/loader.h"
#include "plugin/registry.h"
#include "util/log.h"
#include "util/strbuf.h"

#define MAX_MODULES 64

typedef struct chain_entry {
    const char *name;
    const admission_builtin_t *builtin; /* NULL for a loaded plugin */
    loaded_plugin_t *plugin;            /* NULL for a built-in */
    const skiff_admission_vtable_t *vt;
    skiff_plugin_ctx_t own_ctx;         /* a built-in's context */
    skiff_plugin_ctx_t *ctx;
} chain_entry_t;

struct admission_chain {
    uv_loop_t *loop;
    chain_entry_t e[MAX_MODULES];
    size_t n;
    char *summary;
    int attached;
};

/* One request's answer, behind skiff_admission_request_t.core_private. */
typedef struct answer {
    api_call_t *call;
    const chain_entry_t *entry;
    int denied;
    int code;
    char reason[64];
    json_t *details;
    char *message; /* complete Status message */
    int sent;      /* the module answered the call itself */
    json_t *status; /* a whole Status to send instead of code/reason/message */
    strbuf_t warnings;
} answer_t;

static void builtin_log(skiff_plugin_ctx_t *ctx, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, ctx->name, fmt, ap);
    va_end(ap);
}

static const char *builtin_setting(skiff_plugin_ctx_t *ctx, const char *name) { return NULL; }

static const admission_builtin_t *find_builtin(const char *name)
{
    for (size_t i = 0; admission_builtin_list[i]; i++)
        if (strcmp(admission_builtin_list[i]->name, name) == 0) return admission_builtin_list[i];
    return NULL;
}

/* Is name in the comma-separated list? */
static int listed(const char *list, const char *name)
{
    if (!list) return 0;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        while (*p == ',' || *p == ' ') p++;
        const char *end = p;
        while (*end && *end != ',') end++;
        const char *last = end;
        while (last > p && last[-1] == ' ') last--;
        if ((size_t)(last - p) == n && strncmp(p, name, n) == 0) return 1;
        p = end;
    }
    return 0;
}

/* Every name in list must be a built-in or (for enable) loadable. */
static int check_names(const char *list, const char *opt, const char *other, char *err,
                       size_t errlen, int allow_plugins)
{
    if (!list) return 0;
    char *copy = strdup(list);
    if (!copy) return SKIFF_ENOMEM;
    char *save = NULL;
    int rc = 0;
    for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        if (find_builtin(t)) {
            if (listed(other, t)) {
                snprintf(err, errlen,
                         "admission plugin \"%s\" is both in --enable-admission-plugins and "
                         "--disable-admission-plugins",
                         t);
                rc = SKIFF_EINVAL;
                break;
            }
            continue;
        }
        if (allow_plugins) continue;
        strbuf_t known = {0};
        for (size_t i = 0; admission_builtin_list[i]; i++) {
            if (i) strbuf_add(&known, ", ");
            strbuf_add(&known, admission_builtin_list[i]->name);
        }
        snprintf(err, errlen, "%s: unknown admission plugin \"%s\" (built-in: %s)", opt, t,
                 known.p ? known.p : "");
        strbuf_free(&known);
        rc = SKIFF_EINVAL;
        break;
    }
    free(copy);
    return rc;
}

static int add_entry(admission_chain_t *ch, chain_entry_t *e, char *err, size_t errlen)
{
    if (ch->n >= MAX_MODULES) {
        snprintf(err, errlen, "too many admission plugins (at most %d)", MAX_MODULES);
        return SKIFF_EINVAL;
    }
    ch->e[ch->n] = *e;
    chain_entry_t *ne = &ch->e[ch->n];
    if (ne->builtin) {
        ne->own_ctx.loop = ch->loop;
        ne->own_ctx.name = ne->name;
        ne->own_ctx.log = builtin_log;
        ne->own_ctx.setting = builtin_setting;
        ne->ctx = &ne->own_ctx;
    } else {
        ne->ctx = &ne->plugin->ctx;
    }
    ch->n++;
    return 0;
}

static int add_builtin(admission_chain_t *ch, const admission_builtin_t *b, char *err,
                       size_t errlen)
{
    chain_entry_t e = {.name = b->name, .builtin = b, .vt = b->vt};
    return add_entry(ch, &e, err, errlen);
}

/* "plugin.setting=value;..." entries for plugin p */
static int apply_settings(loaded_plugin_t *p, const char *settings, char *err, size_t errlen)
{
    if (!settings) return 0;
    char *copy = strdup(settings);
    if (!copy) return SKIFF_ENOMEM;
    char *save = NULL;
    int rc = 0;
    for (char *t = strtok_r(copy, ";", &save); t && rc == 0; t = strtok_r(NULL, ";", &save)) {
        while (*t == ' ') t++;
        if (!*t) continue;
        char *dot = strchr(t, '.'), *eq = strchr(t, '=');
        if (!dot || !eq || eq < dot) {
            snprintf(err, errlen,
                     "--admission-plugin-settings: \"%s\" is not plugin.setting=value", t);
            rc = SKIFF_EINVAL;
            break;
        }
        *dot = *eq = '\0';
        if (strcmp(t, p->name) != 0) continue;
        rc = plugin_set_setting(p, dot + 1, eq + 1, err, errlen);
    }
    free(copy);
    return rc;
}

static int load_plugin(admission_chain_t *ch, const char *name, const char *data_dir,
                       const char *settings, char *err, size_t errlen)
{
    loaded_plugin_t *p = plugin_load(name, ch->loop, data_dir, err, errlen);
    if (!p) return SKIFF_ENOENT;
    if (p->desc->kind != SKIFF_PLUGIN_ADMISSION || !p->desc->vtable) {
        snprintf(err, errlen,
                 "--enable-admission-plugins: %s (%s) is not an admission plugin (its kind is "
                 "%d; an admission plugin has kind SKIFF_PLUGIN_ADMISSION and a "
                 "skiff_admission_vtable_t)",
                 name, p->path, (int)p->desc->kind);
        plugin_unload(p);
        return SKIFF_EINVAL;
    }
    int rc = apply_settings(p, settings, err, errlen);
    if (rc == 0) rc = plugin_start(p, err, errlen);
    if (rc != 0) {
        plugin_unload(p);
        return rc;
    }
    chain_entry_t e = {.name = p->name, .plugin = p, .vt = p->desc->vtable};
    rc = add_entry(ch, &e, err, errlen);
    if (rc != 0) plugin_unload(p);
    return rc;
}

int admission_chain_new(uv_loop_t *loop, const char *data_dir, const char *enable,
                        const char *disable, const char *settings, admission_chain_t **out,
                        char *err, size_t errlen)
{
    *out = NULL;
    int rc = check_names(enable, "--enable-admission-plugins", disable, err, errlen, 1);
    if (rc == 0)
        rc = check_names(disable, "--disable-admission-plugins", enable, err, errlen, 0);
    if (rc != 0) return rc;
    admission_chain_t *ch = calloc(1, sizeof *ch);
    if (!ch) return SKIFF_ENOMEM;
    ch->loop = loop;
    const admission_builtin_t *last = NULL;
    for (size_t i = 0; admission_builtin_list[i] && rc == 0; i++) {
        const admission_builtin_t *b = admission_builtin_list[i];
        int on = (b->default_on || listed(enable, b->name)) && !listed(disable, b->name);
        if (!on) continue;
        if (strcmp(b->name, "ResourceQuota") == 0) last = b;
        else rc = add_builtin(ch, b, err, errlen);
    }
    char *copy = enable ? strdup(enable) : NULL;
    char *save = NULL;
    for (char *t = copy ? strtok_r(copy, ", ", &save) : NULL; t && rc == 0;
         t = strtok_r(NULL, ", ", &save))
        if (!find_builtin(t)) rc = load_plugin(ch, t, data_dir, settings, err, errlen);
    free(copy);
    if (rc == 0 && last) rc = add_builtin(ch, last, err, errlen);
    if (rc != 0) {
        admission_chain_free(ch);
        return rc;
    }
    strbuf_t s = {0};
    for (size_t i = 0; i < ch->n; i++) {
        if (i) strbuf_add(&s, ",");
        strbuf_add(&s, ch->e[i].name);
        /* the chain, in order, in `skiff plugins list` */
        if (ch->e[i].plugin)
            plugin_registry_add(ch->e[i].plugin->name, ch->e[i].plugin->path, ch->e[i].plugin,
                                plugin_registry_origin_of(ch->e[i].plugin->path),
                                PLUGIN_REC_STARTED, NULL);
        else
            plugin_registry_add_builtin(ch->e[i].name, SKIFF_PLUGIN_ADMISSION,
                                        "compiled into skiff");
    }
    ch->summary = s.p ? s.p : strdup("");
    *out = ch;
    return 0;
}

const char *admission_chain_summary(const admission_chain_t *ch)
{
    return ch && ch->summary ? ch->summary : "";
}

void admission_chain_attach(admission_chain_t *ch, struct api_server *s)
{
    if (!ch || ch->attached) return;
    ch->attached = 1;
    for (size_t i = 0; i < ch->n; i++) {
        const admission_builtin_t *b = ch->e[i].builtin;
        if (b && b->attach && b->attach(ch->e[i].ctx, s) != 0)
            log_warn("admission", "%s could not start its background work", b->name);
    }
}

void admission_chain_store_event(admission_chain_t *ch, const char *key)
{
    if (!ch) return;
    for (size_t i = 0; i < ch->n; i++) {
        const admission_builtin_t *b = ch->e[i].builtin;
        if (b && b->store_event) b->store_event(ch->e[i].ctx, key);
    }
}

void admission_chain_detach(admission_chain_t *ch)
{
    if (!ch || !ch->attached) return;
    ch->attached = 0;
    for (size_t i = 0; i < ch->n; i++) {
        const admission_builtin_t *b = ch->e[i].builtin;
        if (b && b->detach) b->detach(ch->e[i].ctx);
    }
}

void admission_chain_free(admission_chain_t *ch)
{
    if (!ch) return;
    for (size_t i = 0; i < ch->n; i++)
        if (ch->e[i].plugin) plugin_unload(ch->e[i].plugin);
    free(ch->summary);
    free(ch);
}

/* ---- one request ----------------------------------------------------------- */

static void answer_deny(answer_t *a, int code, const char *reason, json_t *details, char *msg)
{
    if (a->denied) {
        /* one denial per hook: the first one counts */
        json_decref(details);
        free(msg);
        return;
    }
    a->denied = 1;
    a->code = code;
    snprintf(a->reason, sizeof a->reason, "%s", reason ? reason : status_reason_for_code(code));
    a->details = details;
    a->message = msg;
}

static const char *req_name(const skiff_admission_request_t *req)
{
    return req->name ? req->name : "";
}

int admission_deny_raw(const skiff_admission_request_t *req, int code, const char *reason,
                       json_t *details, const char *fmt, ...)
{
    answer_t *a = req->core_private;
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
    va_end(ap);
    answer_deny(a, code, reason, details, msg);
    return SKIFF_ADMISSION_DENIED;
}

int admission_forbid(const skiff_admission_request_t *req, const char *fmt, ...)
{
    answer_t *a = req->core_private;
    char *inner = NULL, *msg = NULL, rn[256];
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&inner, fmt, ap) < 0) inner = NULL;
    va_end(ap);
    status_resource_name(a->call->kind, rn, sizeof rn);
    if (asprintf(&msg, "%s \"%s\" is forbidden: %s", rn, req_name(req), inner ? inner : "") < 0)
        msg = NULL;
    free(inner);
    answer_deny(a, 403, "Forbidden", status_details(a->call->kind, req_name(req)), msg);
    return SKIFF_ADMISSION_DENIED;
}

/* A loaded plugin's denial names the plugin, as a webhook's does. */
static char *plugin_message(answer_t *a, const skiff_admission_request_t *req, int code,
                            const char *inner)
{
    char rn[256], *msg = NULL;
    const kind_def_t *k = a->call->kind;
    int n;
    if (code == 422)
        n = asprintf(&msg, "%s%s%s \"%s\" is invalid: admission plugin \"%s\" denied the request: %s",
                     k->kind, k->group[0] ? "." : "", k->group, req_name(req), a->entry->name,
                     inner);
    else if (code == 403)
        n = asprintf(&msg, "%s \"%s\" is forbidden: admission plugin \"%s\" denied the request: %s",
                     status_resource_name(k, rn, sizeof rn), req_name(req), a->entry->name, inner);
    else
        n = asprintf(&msg, "admission plugin \"%s\" denied the request: %s", a->entry->name, inner);
    return n < 0 ? NULL : msg;
}

int skiff_admission_deny(const skiff_admission_request_t *req, int code, const char *fmt, ...)
{
    if (!req || !req->core_private) return SKIFF_ADMISSION_DENIED;
    answer_t *a = req->core_private;
    static const int allowed[] = {400, 403, 404, 409, 422, 429};
    int ok = 0;
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++) ok |= allowed[i] == code;
    if (!ok) code = 403;
    char *inner = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&inner, fmt ? fmt : "", ap) < 0) inner = NULL;
    va_end(ap);
    char *msg = plugin_message(a, req, code, inner ? inner : "");
    free(inner);
    answer_deny(a, code, NULL, status_details(a->call->kind, req_name(req)), msg);
    return SKIFF_ADMISSION_DENIED;
}

void skiff_admission_warn(const skiff_admission_request_t *req, const char *fmt, ...)
{
    if (!req || !req->core_private || !fmt) return;
    answer_t *a = req->core_private;
    char *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&text, fmt, ap) < 0) text = NULL;
    va_end(ap);
    if (!text) return;
    if (a->warnings.len < 16384) {
        /* RFC 7234 warn-text: a quoted string; only printable ASCII reaches
         * the header, quotes and backslashes escaped */
        strbuf_add(&a->warnings, "Warning: 299 - \"");
        for (const char *p = text; *p; p++) {
            unsigned char ch = (unsigned char)*p;
            if (ch == '"' || ch == '\\') strbuf_addn(&a->warnings, "\\", 1);
            if (ch < 0x20 || ch > 0x7e) ch = '?';
            strbuf_addn(&a->warnings, (const char *)&ch, 1);
        }
        strbuf_add(&a->warnings, "\"\r\n");
    }
    free(text);
}

int admission_invalid(const skiff_admission_request_t *req, const char *field, const char *reason,
                      const char *message)
{
    answer_t *a = req->core_private;
    if (a->denied) return SKIFF_ADMISSION_DENIED;
    validation_error_t e = {(char *)field, (char *)reason, (char *)message};
    validation_result_t res = {&e, 1, 0};
    a->denied = 1;
    a->status = status_invalid(a->call->kind, req_name(req), &res);
    return SKIFF_ADMISSION_DENIED;
}

int admission_answered(const skiff_admission_request_t *req)
{
    answer_t *a = req->core_private;
    if (!a->denied) {
        a->denied = 1;
        a->sent = 1;
    }
    return SKIFF_ADMISSION_DENIED;
}

struct api_call *admission_call(const skiff_admission_request_t *req)
{
    return req && req->core_private ? ((answer_t *)req->core_private)->call : NULL;
}

int admission_is(const skiff_admission_request_t *req, const char *group, const char *resource)
{
    return strcmp(req->group, group) == 0 && strcmp(req->resource, resource) == 0 &&
           !req->subresource[0];
}

static const kind_def_t *kind_for(const char *api_version, const char *resource)
{
    if (!api_version || !resource) return NULL;
    const char *slash = strchr(api_version, '/');
    char group[128] = "";
    const char *version = api_version;
    if (slash) {
        snprintf(group, sizeof group, "%.*s", (int)(slash - api_version), api_version);
        version = slash + 1;
    }
    return registry_find_resource(group, version, resource);
}

/* A watch cache's key: "<ns>/<name>", or "<name>" when ns is NULL (a
 * cluster-scoped kind). 0, or -1 when it does not fit. */
static int cache_key(char *key, size_t len, const char *ns, const char *name)
{
    size_t nl = ns ? strlen(ns) : 0, l = strlen(name);
    if ((ns ? nl + 1 : 0) + l >= len) return -1;
    char *p = key;
    if (ns) {
        memcpy(p, ns, nl);
        p[nl] = '/';
        p += nl + 1;
    }
    memcpy(p, name, l + 1);
    return 0;
}

const json_t *admission_peek(const skiff_admission_request_t *req, const char *resource,
                             const char *ns, const char *name)
{
    api_call_t *c = admission_call(req);
    const kind_def_t *k = kind_for("v1", resource);
    if (!c || !k || !name) return NULL;
    watch_cache_t *wc = api_cache_for(c->srv, k);
    char key[600];
    cache_obj_t *o = wc && cache_key(key, sizeof key, k->namespaced ? (ns ? ns : "") : NULL, name) == 0
                         ? watch_cache_get(wc, key)
                         : NULL;
    return o ? cache_obj_parsed(o) : NULL;
}

json_t *skiff_admission_get(const skiff_admission_request_t *req, const char *api_version,
                            const char *resource, const char *ns, const char *name)
{
    api_call_t *c = admission_call(req);
    const kind_def_t *k = kind_for(api_version, resource);
    if (!c || !k || !name) return NULL;
    watch_cache_t *wc = api_cache_for(c->srv, k);
    char key[600];
    if (k->namespaced) snprintf(key, sizeof key, "%s/%s", ns ? ns : "", name);
    else snprintf(key, sizeof key, "%s", name);
    cache_obj_t *o = wc ? watch_cache_get(wc, key) : NULL;
    if (!o) return NULL;
    json_t *obj = cache_obj_decode(o);
    /* a resource served in another version than stored comes back in the asked one */
    if (obj && registry_storage_kind(k) != k) {
        json_t *conv = registry_convert_from_storage(k, obj);
        json_decref(obj);
        obj = conv;
    }
    return obj;
}

json_t *skiff_admission_list(const skiff_admission_request_t *req, const char *api_version,
                             const char *resource, const char *ns)
{
    api_call_t *c = admission_call(req);
    const kind_def_t *k = kind_for(api_version, resource);
    if (!c || !k) return NULL;
    watch_cache_t *wc = api_cache_for(c->srv, k);
    if (!wc) return NULL;
    cache_obj_t **items;
    size_t n = watch_cache_list(wc, ns && *ns ? ns : NULL, NULL, NULL, &items);
    json_t *out = json_array();
    for (size_t i = 0; i < n && out; i++) {
        json_t *obj = cache_obj_decode(items[i]);
        if (obj && registry_storage_kind(k) != k) {
            json_t *conv = registry_convert_from_storage(k, obj);
            json_decref(obj);
            obj = conv;
        }
        if (obj) json_array_append_new(out, obj);
    }
    watch_cache_list_free(items, n);
    return out;
}

const char *skiff_admission_operation_name(skiff_admission_operation_t op)
{
    switch (op) {
    case SKIFF_ADMISSION_CREATE: return "CREATE";
    case SKIFF_ADMISSION_UPDATE: return "UPDATE";
    case SKIFF_ADMISSION_DELETE: return "DELETE";
    case SKIFF_ADMISSION_CONNECT: return "CONNECT";
    }
    return "UNKNOWN";
}

/* Warning lines of this phase after those the call already has. */
static void add_warnings(api_call_t *c, answer_t *a)
{
    if (!a->warnings.p || a->warnings.failed) {
        strbuf_free(&a->warnings);
        return;
    }
    if (c->warnings) {
        strbuf_t all = {0};
        strbuf_add(&all, c->warnings);
        strbuf_add(&all, a->warnings.p);
        strbuf_free(&a->warnings);
        if (all.failed) {
            strbuf_free(&all);
            return;
        }
        free(c->warnings);
        c->warnings = all.p;
    } else {
        c->warnings = a->warnings.p;
        a->warnings.p = NULL;
    }
    c->resp->extra_headers = c->warnings;
}

int admission_run(admission_chain_t *ch, struct api_call *c, int phase,
                  skiff_admission_operation_t op, json_t *obj, const json_t *old)
{
    if (!ch || ch->n == 0) return 0;
    const char *groups[API_MAX_GROUPS + 2];
    size_t ngroups = 0;
    const char *user = api_identity(c->req, c->resp, groups, &ngroups);
    const char *name = c->name;
    if (!name && obj) name = api_meta_str(obj, "name");
    if (!name && old) name = api_meta_str(old, "name");
    answer_t a = {.call = c};
    skiff_admission_request_t req = {
        .operation = op,
        .group = c->kind->group,
        .version = c->kind->version,
        .kind = c->kind->kind,
        .resource = c->kind->resource,
        .subresource = c->sub ? c->sub : "",
        .ns = c->ns ? c->ns : "",
        .name = name ? name : "",
        .user = user,
        .groups = groups,
        .dry_run = c->dry_run,
        .object = obj,
        .old_object = old,
        .options = c->opts,
        .core_private = &a,
    };
    int denied = 0;
    for (size_t i = 0; i < ch->n && !denied; i++) {
        chain_entry_t *e = &ch->e[i];
        a.entry = e;
        int rc;
        if (phase == ADMISSION_MUTATE)
            rc = e->vt->mutate ? e->vt->mutate(e->ctx, &req) : 0;
        else
            rc = e->vt->validate ? e->vt->validate(e->ctx, &req) : 0;
        if (rc == 0 && !a.denied) continue;
        denied = 1;
        if (!a.denied) skiff_admission_deny(&req, 403, "the request was refused");
    }
    add_warnings(c, &a);
    if (!denied) return 0;
    if (a.sent) return -1;
    if (a.status) {
        status_send(c->resp, a.status);
        return -1;
    }
    if (a.message)
        status_reply(c->resp, a.code, a.reason, a.details, "%s", a.message);
    else
        status_reply(c->resp, a.code, a.reason, a.details, "admission denied the request");
    free(a.message);
    return -1;
}
