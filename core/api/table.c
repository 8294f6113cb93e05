/* core/api/table.c - meta.k8s.io Table (v1 and v1beta1) from objects and
 * the kind's printer columns.
 *
 * Column order follows the real server's printers: NAME, the kind's
 * always-shown columns, AGE, then the -o wide (priority 1) columns, unless
 * the kind places its own NAME or AGE column (see plan_columns). Ages are sent as the server sends
 * them: a short human duration computed from creationTimestamp. Rows
 * reference the caller's JSON (no copies), so 20,000 rows stay cheap. */
#include "api/table.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char k_name_desc[] =
    "Name must be unique within a namespace. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
static const char k_age_desc[] =
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created.";

/* ---- durations and timestamps --------------------------------------------- */

char *table_human_duration(long long s, char *buf, size_t size)
{
    /* Same thresholds as apimachinery's duration.HumanDuration. */
    if (s < -1) {
        snprintf(buf, size, "<invalid>");
        return buf;
    }
    if (s < 0)
        s = 0;
    if (s < 120) {
        snprintf(buf, size, "%llds", s);
        return buf;
    }
    long long m = s / 60;
    if (m < 10) {
        if (s % 60)
            snprintf(buf, size, "%lldm%llds", m, s % 60);
        else
            snprintf(buf, size, "%lldm", m);
        return buf;
    }
    if (m < 180) {
        snprintf(buf, size, "%lldm", m);
        return buf;
    }
    long long h = s / 3600;
    if (h < 8) {
        if (m % 60)
            snprintf(buf, size, "%lldh%lldm", h, m % 60);
        else
            snprintf(buf, size, "%lldh", h);
    } else if (h < 48) {
        snprintf(buf, size, "%lldh", h);
    } else if (h < 24 * 8) {
        if (h % 24)
            snprintf(buf, size, "%lldd%lldh", h / 24, h % 24);
        else
            snprintf(buf, size, "%lldd", h / 24);
    } else if (h < 24 * 365 * 2) {
        snprintf(buf, size, "%lldd", h / 24);
    } else if (h < 24 * 365 * 8) {
        long long dy = (h / 24) % 365;
        if (dy)
            snprintf(buf, size, "%lldy%lldd", h / 24 / 365, dy);
        else
            snprintf(buf, size, "%lldy", h / 24 / 365);
    } else {
        snprintf(buf, size, "%lldy", h / 24 / 365);
    }
    return buf;
}

static int digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i]))
            return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

/* RFC 3339 ("2024-05-01T10:00:00Z", fractions and offsets allowed) to
 * seconds since the epoch; 0 on success. */
static int parse_rfc3339(const char *ts, long long *out)
{
    int Y, M, D, h, m, s;
    if (strlen(ts) < 20 || !digits(ts, 4, &Y) || ts[4] != '-' || !digits(ts + 5, 2, &M) ||
        ts[7] != '-' || !digits(ts + 8, 2, &D) || (ts[10] != 'T' && ts[10] != 't') ||
        !digits(ts + 11, 2, &h) || ts[13] != ':' || !digits(ts + 14, 2, &m) || ts[16] != ':' ||
        !digits(ts + 17, 2, &s) || M < 1 || M > 12 || D < 1 || D > 31)
        return -1;
    const char *p = ts + 19;
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++)
            ;
    long long off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om))
            return -1;
        off = (oh * 3600LL + om * 60LL) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    /* Days from civil date (proleptic Gregorian), no timezone state needed. */
    int y = M <= 2 ? Y - 1 : Y;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (M + (M > 2 ? -3 : 9)) + 2) / 5 + D - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    long long days = era * 146097 + doe - 719468;
    *out = days * 86400 + h * 3600LL + m * 60LL + s - off;
    return 0;
}

char *table_age(const char *ts, time_t now, char *buf, size_t size)
{
    long long t;
    if (!ts || parse_rfc3339(ts, &t) < 0) {
        snprintf(buf, size, "<unknown>");
        return buf;
    }
    return table_human_duration((long long)now - t, buf, size);
}

/* ---- Accept header and query --------------------------------------------- */

static const char *find_semi(const char *p, const char *end)
{
    for (; p < end; p++)
        if (*p == ';')
            return p;
    return NULL;
}

/* Is "name=value" among the ;-separated parameters of media range [p, end)? */
static int has_param(const char *p, const char *end, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    if (p >= end)
        return 0;
    const char *q = find_semi(p, end);
    while (q) {
        q++;
        while (q < end && (*q == ' ' || *q == '\t'))
            q++;
        const char *semi = find_semi(q, end);
        const char *stop = semi ? semi : end;
        while (stop > q && (stop[-1] == ' ' || stop[-1] == '\t'))
            stop--;
        if ((size_t)(stop - q) == nl + 1 + vl && strncasecmp(q, name, nl) == 0 && q[nl] == '=' &&
            strncmp(q + nl + 1, value, vl) == 0)
            return 1;
        q = semi;
    }
    return 0;
}

int table_accept(const char *accept, const char **content_type)
{
    if (!accept)
        return TABLE_NONE;
    const char *p = accept;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if ((size_t)(end - p) >= 16 && strncasecmp(p, "application/json", 16) == 0 &&
            has_param(p, end, "as", "Table") && has_param(p, end, "g", "meta.k8s.io")) {
            if (has_param(p, end, "v", "v1")) {
                if (content_type)
                    *content_type = TABLE_V1_TYPE;
                return TABLE_V1;
            }
            if (has_param(p, end, "v", "v1beta1")) {
                if (content_type)
                    *content_type = TABLE_V1BETA1_TYPE;
                return TABLE_V1BETA1;
            }
        }
        if (!comma)
            return TABLE_NONE;
        p = comma + 1;
    }
}

table_include_t table_include_from_query(const char *query)
{
    static const char key[] = "includeObject=";
    for (const char *p = query; p && *p;) {
        if (strncmp(p, key, sizeof key - 1) == 0) {
            const char *v = p + sizeof key - 1;
            size_t n = strcspn(v, "&");
            if (n == 4 && strncmp(v, "None", 4) == 0)
                return TABLE_INCLUDE_NONE;
            if (n == 6 && strncmp(v, "Object", 6) == 0)
                return TABLE_INCLUDE_OBJECT;
            return TABLE_INCLUDE_METADATA;
        }
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return TABLE_INCLUDE_METADATA;
}

/* ---- cells ------------------------------------------------------------------ */

/* Follow ".a.b[2].c" in obj; borrowed result or NULL. */
static json_t *json_path_get(const json_t *obj, const char *path)
{
    const json_t *cur = obj;
    const char *p = path;
    char key[128];
    while (cur && *p) {
        if (*p == '.') {
            p++;
            size_t n = strcspn(p, ".[");
            if (n == 0 || n >= sizeof key)
                return NULL;
            memcpy(key, p, n);
            key[n] = '\0';
            cur = json_object_get(cur, key);
            p += n;
        } else if (p[0] == '[' && p[1] == '?') {
            /* [?(@.type=="Ready")]: the first element whose field equals
             * the string, as printer columns of CRDs use it */
            char field[128], want[256];
            const char *q = p + 2;
            if (*q == '(')
                q++;
            if (q[0] != '@' || q[1] != '.')
                return NULL;
            q += 2;
            size_t n = strcspn(q, "=!");
            if (n == 0 || n >= sizeof field || q[n] != '=' || q[n + 1] != '=')
                return NULL;
            memcpy(field, q, n);
            field[n] = '\0';
            q += n + 2;
            char quote = *q;
            if (quote != '"' && quote != '\'')
                return NULL;
            const char *close = strchr(q + 1, quote);
            if (!close || (size_t)(close - q - 1) >= sizeof want)
                return NULL;
            memcpy(want, q + 1, (size_t)(close - q - 1));
            want[close - q - 1] = '\0';
            q = close + 1;
            if (*q == ')')
                q++;
            if (*q != ']')
                return NULL;
            p = q + 1;
            const json_t *found = NULL;
            size_t i;
            json_t *e;
            json_array_foreach(cur, i, e) {
                char dotted[130];
                snprintf(dotted, sizeof dotted, ".%s", field);
                const json_t *fv = json_path_get(e, dotted);
                if (json_is_string(fv) && strcmp(json_string_value(fv), want) == 0) {
                    found = e;
                    break;
                }
            }
            cur = found;
        } else if (*p == '[') {
            char *end;
            long idx = strtol(p + 1, &end, 10);
            if (*end != ']' || idx < 0)
                return NULL;
            cur = json_array_get(cur, (size_t)idx);
            p = end + 1;
        } else {
            return NULL;
        }
    }
    return (json_t *)cur;
}

static int is_age_column(const kind_column_t *c)
{
    return strcasecmp(c->name, "AGE") == 0 && !c->compute &&
           (!c->json_path || strcmp(c->json_path, ".metadata.creationTimestamp") == 0);
}

static int is_name_column(const kind_column_t *c)
{
    return strcasecmp(c->name, "NAME") == 0 && !c->compute &&
           (!c->json_path || strcmp(c->json_path, ".metadata.name") == 0);
}

static json_t *name_cell(const json_t *obj)
{
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    return json_string(name ? name : "");
}

static json_t *age_cell(const json_t *obj, time_t now)
{
    char buf[32];
    const json_t *meta = json_object_get(obj, "metadata");
    return json_string(
        table_age(json_string_value(json_object_get(meta, "creationTimestamp")), now, buf, sizeof buf));
}

static json_t *column_cell(const kind_column_t *c, const json_t *obj, time_t now)
{
    if (is_age_column(c))
        return age_cell(obj, now);
    if (is_name_column(c))
        return name_cell(obj);
    if (c->compute) {
        json_t *v = c->compute(obj);
        return v ? v : json_null();
    }
    json_t *v = c->json_path ? json_path_get(obj, c->json_path) : NULL;
    if (!v)
        return json_null();
    if (c->type && strcmp(c->type, "date") == 0 && json_is_string(v)) {
        char buf[32];
        return json_string(table_age(json_string_value(v), now, buf, sizeof buf));
    }
    if (json_is_object(v) || json_is_array(v)) {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        json_t *cell = s ? json_string(s) : json_null();
        free(s);
        return cell;
    }
    return json_incref(v);
}

/* ---- columns ---------------------------------------------------------------- */

typedef struct col_plan {
    const kind_column_t *col; /* NULL for NAME or the added AGE */
    int special;              /* 1: NAME, 2: added AGE */
} col_plan_t;

/* The kind's columns go between NAME and AGE, wide ones after AGE. A kind
 * that declares its own NAME column (events: NAME is a wide column at the
 * end, and there is no AGE) lays out every column itself; one that declares
 * only AGE (nodes: AGE before VERSION) places AGE itself. */
static size_t plan_columns(const kind_def_t *k, col_plan_t *plan, size_t max)
{
    size_t n = 0, ncols = 0;
    int own_age = 0, own_name = 0;
    const kind_column_t *cols = k ? k->columns : NULL;
    for (; cols && cols[ncols].name; ncols++) {
        own_age |= is_age_column(&cols[ncols]);
        own_name |= is_name_column(&cols[ncols]);
    }
    /* a CRD's additionalPrinterColumns are the whole table after NAME */
    if (k && k->crd && ncols)
        own_age = 1;
    if (!own_name)
        plan[n++] = (col_plan_t){NULL, 1};
    if (own_age || own_name) {
        for (size_t i = 0; i < ncols && n < max; i++)
            plan[n++] = (col_plan_t){&cols[i], 0};
        return n;
    }
    for (size_t i = 0; i < ncols && n < max; i++)
        if (cols[i].priority == 0)
            plan[n++] = (col_plan_t){&cols[i], 0};
    if (n < max)
        plan[n++] = (col_plan_t){NULL, 2};
    for (size_t i = 0; i < ncols && n < max; i++)
        if (cols[i].priority != 0)
            plan[n++] = (col_plan_t){&cols[i], 0};
    return n;
}

static json_t *column_defs(const col_plan_t *plan, size_t n)
{
    json_t *defs = json_array();
    for (size_t i = 0; i < n; i++) {
        const col_plan_t *p = &plan[i];
        json_t *d;
        if (p->special == 1 || (p->col && is_name_column(p->col)))
            d = json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", "Name", "type", "string", "format",
                          "name", "description", k_name_desc, "priority",
                          p->col ? p->col->priority : 0);
        else if (p->special == 2 || is_age_column(p->col))
            d = json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", "Age", "type", "string", "format",
                          "", "description", k_age_desc, "priority",
                          p->col ? p->col->priority : 0);
        else
            d = json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", p->col->name, "type",
                          p->col->type ? p->col->type : "string", "format", "", "description",
                          "", "priority", p->col->priority);
        json_array_append_new(defs, d);
    }
    return defs;
}

/* ---- rows ------------------------------------------------------------------- */

static json_t *row_object(const json_t *obj, const table_opts_t *o)
{
    if (o->include == TABLE_INCLUDE_NONE)
        return NULL;
    if (o->include == TABLE_INCLUDE_OBJECT)
        return json_incref((json_t *)obj);
    json_t *meta = json_object_get(obj, "metadata");
    json_t *p = json_object();
    json_object_set_new(p, "kind", json_string("PartialObjectMetadata"));
    json_object_set_new(p, "apiVersion", json_string(o->version == TABLE_V1BETA1
                                                         ? "meta.k8s.io/v1beta1"
                                                         : "meta.k8s.io/v1"));
    json_object_set_new(p, "metadata", meta ? json_incref(meta) : json_object());
    return p;
}

static json_t *row_new(const json_t *obj, const col_plan_t *plan, size_t n, const table_opts_t *o,
                       time_t now)
{
    json_t *cells = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *cell;
        if (plan[i].special == 1)
            cell = name_cell(obj);
        else if (plan[i].special == 2) {
            cell = age_cell(obj, now);
        } else {
            cell = column_cell(plan[i].col, obj, now);
        }
        json_array_append_new(cells, cell ? cell : json_null());
    }
    json_t *row = json_object();
    json_object_set_new(row, "cells", cells);
    json_t *ro = row_object(obj, o);
    if (ro)
        json_object_set_new(row, "object", ro);
    return row;
}

json_t *table_new(const kind_def_t *k, const json_t *src, const table_opts_t *opts)
{
    if (!json_is_object(src))
        return NULL;
    table_opts_t o = {0};
    if (opts)
        o = *opts;
    if (o.version != TABLE_V1BETA1)
        o.version = TABLE_V1;
    time_t now = o.now ? o.now : time(NULL);

    col_plan_t plan[64];
    size_t n = plan_columns(k, plan, sizeof plan / sizeof plan[0]);

    json_t *t = json_object();
    json_t *md = json_object();
    json_object_set_new(t, "kind", json_string("Table"));
    json_object_set_new(t, "apiVersion", json_string(o.version == TABLE_V1BETA1
                                                         ? "meta.k8s.io/v1beta1"
                                                         : "meta.k8s.io/v1"));
    json_object_set_new(t, "metadata", md);
    json_object_set_new(t, "columnDefinitions", o.no_headers ? json_array() : column_defs(plan, n));

    json_t *items = json_object_get(src, "items");
    json_t *smd = json_object_get(src, "metadata");
    json_t *rv = json_object_get(smd, "resourceVersion");
    if (json_is_string(rv))
        json_object_set(md, "resourceVersion", rv);
    json_t *rows;
    if (json_is_array(items)) {
        json_t *cont = json_object_get(smd, "continue");
        if (json_is_string(cont) && json_string_length(cont))
            json_object_set(md, "continue", cont);
        json_t *remaining = json_object_get(smd, "remainingItemCount");
        if (json_is_integer(remaining))
            json_object_set(md, "remainingItemCount", remaining);
        size_t count = json_array_size(items);
        rows = json_array();
        for (size_t i = 0; i < count; i++) {
            json_t *item = json_array_get(items, i);
            if (json_is_object(item))
                json_array_append_new(rows, row_new(item, plan, n, &o, now));
        }
    } else {
        rows = json_array();
        json_array_append_new(rows, row_new(src, plan, n, &o, now));
    }
    json_object_set_new(t, "rows", rows);
    return t;
}
