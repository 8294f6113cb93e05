/* core/api/path.c - parses request paths for the router, audit and limits. */
#include "api/path.h"

#include <string.h>

#include "object/registry.h"
#include "util/percent.h"

#include <stdlib.h>

int api_path_parse(const char *path, api_path_t *p)
{
    memset(p, 0, sizeof *p);
    size_t len = strlen(path);
    if (len >= sizeof p->buf) return -1;
    memcpy(p->buf, path, len + 1);
    char *seg[12];
    int n = 0;
    for (char *c = p->buf; *c;) {
        while (*c == '/') *c++ = '\0';
        if (!*c) break;
        if (n == 12) return -1;
        seg[n++] = c;
        while (*c && *c != '/') c++;
    }
    int i;
    if (n >= 3 && strcmp(seg[0], "api") == 0) {
        p->group = "";
        p->version = seg[1];
        i = 2;
    } else if (n >= 4 && strcmp(seg[0], "apis") == 0) {
        p->group = seg[1];
        p->version = seg[2];
        i = 3;
    } else {
        return 0;
    }
    int rest = n - i;
    /* namespaces/<ns>/<resource>...: but namespaces/<name>/status is the
     * namespace's own subresource, so ask the registry which it is */
    if (rest >= 3 && strcmp(seg[i], "namespaces") == 0) {
        const kind_def_t *k = registry_find_resource(p->group, p->version, seg[i + 2]);
        if (k && k->namespaced && rest <= 5) {
            p->ns = seg[i + 1];
            p->resource = seg[i + 2];
            p->name = rest >= 4 ? seg[i + 3] : NULL;
            p->sub = rest >= 5 ? seg[i + 4] : NULL;
        }
    }
    if (!p->resource && rest >= 1 && rest <= 3) {
        p->resource = seg[i];
        p->name = rest >= 2 ? seg[i + 1] : NULL;
        p->sub = rest >= 3 ? seg[i + 2] : NULL;
    }
    p->resource_request = p->resource != NULL;
    return 0;
}

const char *api_path_verb(const api_path_t *p, const char *method, int watch)
{
    if (!p->resource_request) {
        static const char *const methods[][2] = {{"GET", "get"},     {"HEAD", "head"},
                                                 {"POST", "post"},   {"PUT", "put"},
                                                 {"PATCH", "patch"}, {"DELETE", "delete"}};
        for (size_t i = 0; i < sizeof methods / sizeof *methods; i++)
            if (strcmp(method, methods[i][0]) == 0) return methods[i][1];
        return "unknown";
    }
    if (!strcmp(method, "GET") || !strcmp(method, "HEAD"))
        return watch ? "watch" : p->name ? "get" : "list";
    if (!strcmp(method, "POST")) return "create";
    if (!strcmp(method, "PUT")) return "update";
    if (!strcmp(method, "PATCH")) return "patch";
    if (!strcmp(method, "DELETE")) return p->name ? "delete" : "deletecollection";
    return "unknown";
}

char *api_query_value(const char *query, const char *key)
{
    char *found = NULL;
    for (const char *q = query; q && *q;) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        size_t klen = eq ? (size_t)(eq - q) : len;
        char *k = percent_decode_dup(q, klen, 1);
        if (k && strcmp(k, key) == 0) {
            free(found);
            found = eq ? percent_decode_dup(eq + 1, len - klen - 1, 1) : strdup("");
        }
        free(k);
        if (!amp) break;
        q = amp + 1;
    }
    return found;
}
