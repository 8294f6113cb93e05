/* core/util/yaml_json.c - YAML or JSON configuration text to a jansson tree
 * (libyaml's document loader, then a bounded walk of its nodes). */
#include "util/yaml_json.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

typedef struct walk {
    yaml_document_t *doc;
    int flags;
    size_t nodes;
    char *err;
    size_t errlen;
} walk_t;

static void seterr(walk_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void seterr(walk_t *w, const char *fmt, ...)
{
    if (!w->err || !w->errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, w->errlen, fmt, ap);
    va_end(ap);
}

static unsigned long line_of(const yaml_node_t *n) { return (unsigned long)n->start_mark.line + 1; }

/* Whether the len bytes at s are the word w, exactly. */
static int is_word(const char *s, size_t len, const char *w)
{
    return len == strlen(w) && memcmp(s, w, len) == 0;
}

static json_t *scalar_to_json(walk_t *w, yaml_node_t *n)
{
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        /* A plain "null", "~" or nothing is YAML's null: `identity:` */
        if (len == 0 || is_word(s, len, "~") || is_word(s, len, "null")) return json_null();
        if (w->flags & YAML_JSON_TYPED_SCALARS) {
            if (is_word(s, len, "true") || is_word(s, len, "True")) return json_true();
            if (is_word(s, len, "false") || is_word(s, len, "False")) return json_false();
            char *end;
            errno = 0;
            long long v = strtoll(s, &end, 10);
            if (*end == '\0' && errno == 0) return json_integer(v);
        }
    }
    json_t *j = json_stringn(s, len);
    if (!j) seterr(w, "line %lu: not valid UTF-8", line_of(n));
    return j;
}

static json_t *node_to_json(walk_t *w, yaml_node_t *n, int depth);

static json_t *sequence_to_json(walk_t *w, yaml_node_t *n, int depth)
{
    json_t *a = json_array();
    if (!a) return NULL;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        json_t *v = node_to_json(w, yaml_document_get_node(w->doc, *it), depth + 1);
        if (!v || json_array_append_new(a, v) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *mapping_to_json(walk_t *w, yaml_node_t *n, int depth)
{
    json_t *o = json_object();
    if (!o) return NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
        if (!k || k->type != YAML_SCALAR_NODE) {
            seterr(w, "line %lu: mapping keys must be plain strings", k ? line_of(k) : 0UL);
            json_decref(o);
            return NULL;
        }
        char *name = strndup((const char *)k->data.scalar.value, k->data.scalar.length);
        json_t *v = name ? node_to_json(w, yaml_document_get_node(w->doc, p->value), depth + 1)
                         : NULL;
        if (v && (w->flags & YAML_JSON_REJECT_DUPLICATES) && json_object_get(o, name)) {
            seterr(w, "line %lu: duplicate key \"%s\"", line_of(k), name);
            json_decref(v);
            v = NULL;
        }
        int bad = !v || json_object_set_new(o, name, v) != 0;
        free(name);
        if (bad) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static json_t *node_to_json(walk_t *w, yaml_node_t *n, int depth)
{
    if (!n) {
        seterr(w, "empty document");
        return NULL;
    }
    if (++w->nodes > YAML_JSON_MAX_NODES) {
        seterr(w, "line %lu: too many nodes (aliases expand to more than %d)", line_of(n),
               YAML_JSON_MAX_NODES);
        return NULL;
    }
    if (depth > YAML_JSON_MAX_DEPTH) {
        seterr(w, "line %lu: nested too deeply", line_of(n));
        return NULL;
    }
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return scalar_to_json(w, n);
    case YAML_SEQUENCE_NODE:
        return sequence_to_json(w, n, depth);
    case YAML_MAPPING_NODE:
        return mapping_to_json(w, n, depth);
    default:
        seterr(w, "unsupported YAML node");
        return NULL;
    }
}

static json_t *load_yaml(const char *text, size_t len, int flags, char *err, size_t errlen)
{
    walk_t w = {.flags = flags, .err = err, .errlen = errlen};
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        seterr(&w, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        seterr(&w, "line %lu column %lu: %s", (unsigned long)parser.problem_mark.line + 1,
               (unsigned long)parser.problem_mark.column + 1,
               parser.problem ? parser.problem : "invalid YAML");
        yaml_parser_delete(&parser);
        return NULL;
    }
    w.doc = &doc;
    json_t *root = node_to_json(&w, yaml_document_get_root_node(&doc), 0);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return root;
}

json_t *yaml_json_load(const char *text, size_t len, int flags, char *err, size_t errlen)
{
    size_t i = 0;
    while (i < len && isspace((unsigned char)text[i])) i++;
    if (i == len || text[i] != '{') return load_yaml(text, len, flags, err, errlen);
    json_error_t je;
    size_t jflags = (flags & YAML_JSON_REJECT_DUPLICATES) ? JSON_REJECT_DUPLICATES : 0;
    json_t *root = json_loadb(text, len, jflags, &je);
    if (!root && err && errlen)
        snprintf(err, errlen, "line %d column %d: %s", je.line, je.column, je.text);
    return root;
}
