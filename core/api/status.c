/* core/api/status.c - builds and sends Kubernetes Status objects. */
#include "api/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <skiff/objects.h>

const char *status_reason_for_code(int code)
{
    switch (code) {
    case 400: return "BadRequest";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 406: return "NotAcceptable";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "RequestEntityTooLarge";
    case 415: return "UnsupportedMediaType";
    case 422: return "Invalid";
    case 429: return "TooManyRequests";
    case 500: return "InternalError";
    case 503: return "ServiceUnavailable";
    case 504: return "Timeout";
    default: return "Unknown";
    }
}

static json_t *status_vnew(int code, const char *reason, json_t *details, const char *fmt,
                           va_list ap)
{
    char msg[4096];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* a message quoting bad input may not be valid UTF-8: say so instead */
    json_t *m = json_string(msg);
    if (!m) m = json_string("the request contained bytes that are not valid UTF-8");
    json_t *s = json_pack("{s:s, s:s, s:{}, s:s, s:o, s:s, s:i}", "kind", "Status", "apiVersion",
                          "v1", "metadata", "status", "Failure", "message", m, "reason",
                          reason ? reason : status_reason_for_code(code), "code", code);
    if (details) json_object_set_new(s, "details", details);
    return s;
}

json_t *status_new(int code, const char *reason, json_t *details, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *s = status_vnew(code, reason, details, fmt, ap);
    va_end(ap);
    return s;
}

json_t *status_details(const kind_def_t *k, const char *name)
{
    json_t *d = json_object();
    if (name && *name) {
        json_t *n = json_string(name);
        if (n) json_object_set_new(d, "name", n);
    }
    if (k) {
        if (k->group[0]) json_object_set_new(d, "group", json_string(k->group));
        json_object_set_new(d, "kind", json_string(k->resource));
    }
    return d;
}

void reply_json(api_response_t *resp, int code, const json_t *obj)
{
    if (resp->ops->send_object) { /* in process: no text to parse again */
        json_t *copy = skiff_json_copy(obj);
        if (copy) {
            resp->ops->send_object(resp, code, copy);
            return;
        }
    }
    char *body = json_dumps(obj, JSON_COMPACT);
    if (!body) {
        static const char fallback[] =
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
            "\"message\":\"out of memory\",\"reason\":\"InternalError\",\"code\":500}";
        resp->ops->send(resp, 500, "application/json", fallback, sizeof fallback - 1);
        return;
    }
    resp->ops->send(resp, code, "application/json", body, strlen(body));
    free(body);
}

void status_send(api_response_t *resp, json_t *status)
{
    int code = (int)json_integer_value(json_object_get(status, "code"));
    reply_json(resp, code ? code : 500, status);
    json_decref(status);
}

void status_reply(api_response_t *resp, int code, const char *reason, json_t *details,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *s = status_vnew(code, reason, details, fmt, ap);
    va_end(ap);
    status_send(resp, s);
}

const char *status_resource_name(const kind_def_t *k, char *buf, size_t len)
{
    if (k->group[0])
        snprintf(buf, len, "%s.%s", k->resource, k->group);
    else
        snprintf(buf, len, "%s", k->resource);
    return buf;
}

json_t *status_invalid(const kind_def_t *k, const char *name, const validation_result_t *res)
{
    char msg[8192];
    size_t off = 0;
    off += (size_t)snprintf(msg, sizeof msg, "%s%s%s \"%s\" is invalid: ", k->kind,
                            k->group[0] ? "." : "", k->group, name ? name : "");
    if (res->count > 1 && off < sizeof msg) off += (size_t)snprintf(msg + off, sizeof msg - off, "[");
    json_t *causes = json_array();
    for (size_t i = 0; i < res->count; i++) {
        const validation_error_t *e = &res->errors[i];
        if (off < sizeof msg)
            off += (size_t)snprintf(msg + off, sizeof msg - off, "%s%s: %s", i ? ", " : "",
                                    e->field, e->message);
        json_array_append_new(causes, json_pack("{s:s, s:s, s:s}", "reason", e->reason, "message",
                                                e->message, "field", e->field));
    }
    if (res->count > 1 && off < sizeof msg) snprintf(msg + off, sizeof msg - off, "]");
    json_t *d = status_details(k, name);
    json_object_set_new(d, "kind", json_string(k->kind));
    json_object_set_new(d, "causes", causes);
    return status_new(422, "Invalid", d, "%s", msg);
}

void status_reply_invalid_field(api_response_t *resp, const kind_def_t *k, const char *name,
                                const char *field, const char *reason, const char *msg)
{
    validation_error_t e = {.field = (char *)field, .reason = (char *)reason, .message = (char *)msg};
    validation_result_t res = {.errors = &e, .count = 1};
    status_send(resp, status_invalid(k, name, &res));
}
