/* core/api/selector.c - label and field selectors: parse once, match many times.
 *
 * Label selectors follow the Kubernetes string grammar (=, ==, !=, in,
 * notin, exists, !exists, and the gt/lt forms) and metav1.LabelSelector
 * JSON; label keys and values are validated as the API validates labels.
 * Field selectors are dotted paths with =, == or != and the value escapes
 * `\,` `\=` `\\`. Everything is parsed into plain arrays so that matching,
 * which runs for every object of every list and watch event, never
 * allocates. This file knows nothing about HTTP or which fields a resource
 * supports; the API server checks that with field_selector_path(). */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/errors.h>

#include "api/selector.h"
#include "util/strbuf.h"

typedef enum ls_op {
    LS_EQ,       /* key=value */
    LS_DEQ,      /* key==value (same meaning, printed as written) */
    LS_NEQ,      /* key!=value */
    LS_IN,       /* key in (a,b) */
    LS_NOTIN,    /* key notin (a,b) */
    LS_EXISTS,   /* key */
    LS_NOTEXIST, /* !key */
    LS_GT,       /* key>5 (integer labels, as node affinity uses) */
    LS_LT,       /* key<5 */
} ls_op_t;

typedef struct ls_req {
    char *key;
    ls_op_t op;
    char **values; /* sorted, unique */
    size_t nvalues;
    long long num; /* LS_GT, LS_LT */
} ls_req_t;

struct label_selector {
    ls_req_t *reqs; /* sorted by key */
    size_t n;
};

typedef struct fs_term {
    char *path;     /* "metadata.name" */
    char *segs;     /* path with '.' replaced by '\0' */
    size_t nsegs;
    int neg;        /* != */
    char *value;    /* unescaped */
} fs_term_t;

struct field_selector {
    fs_term_t *terms;
    size_t n;
};

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return SKIFF_EINVAL;
}

/* ---- label key and value syntax (IsQualifiedName, IsValidLabelValue) ---- */

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9], at most 63 characters. */
static int valid_name_part(const char *s, size_t len)
{
    if (len == 0 || len > 63 || !is_alnum(s[0]) || !is_alnum(s[len - 1]))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    return 1;
}

/* DNS-1123 subdomain: lowercase labels joined by dots, at most 253. */
static int valid_dns_subdomain(const char *s, size_t len)
{
    if (len == 0 || len > 253)
        return 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.') {
            char c = s[i];
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
                return 0;
            continue;
        }
        if (i == start || s[start] == '-' || s[i - 1] == '-')
            return 0;
        start = i + 1;
    }
    return 1;
}

static int check_label_key(const char *key, char *err, size_t errlen)
{
    const char *slash = strchr(key, '/');
    const char *name = slash ? slash + 1 : key;
    if (slash && !valid_dns_subdomain(key, (size_t)(slash - key)))
        return fail(err, errlen,
                    "unable to parse requirement: invalid label key \"%s\": prefix part must be a "
                    "lowercase DNS subdomain (e.g. \"example.com\")",
                    key);
    if (!valid_name_part(name, strlen(name)))
        return fail(err, errlen,
                    "unable to parse requirement: invalid label key \"%s\": name part must be 1 "
                    "to 63 characters of alphanumerics, '-', '_' or '.', starting and ending with "
                    "an alphanumeric character",
                    key);
    return 0;
}

static int check_label_value(const char *key, const char *v, char *err, size_t errlen)
{
    size_t len = strlen(v);
    if (len == 0 || valid_name_part(v, len))
        return 0;
    return fail(err, errlen,
                "unable to parse requirement: invalid label value \"%s\" for key \"%s\": must be "
                "at most 63 characters of alphanumerics, '-', '_' or '.', starting and ending with "
                "an alphanumeric character (or empty)",
                v, key);
}

/* ---- label selector building --------------------------------------------- */

static void req_clear(ls_req_t *r)
{
    free(r->key);
    for (size_t i = 0; i < r->nvalues; i++)
        free(r->values[i]);
    free(r->values);
    memset(r, 0, sizeof(*r));
}

void label_selector_free(label_selector_t *sel)
{
    if (!sel)
        return;
    for (size_t i = 0; i < sel->n; i++)
        req_clear(&sel->reqs[i]);
    free(sel->reqs);
    free(sel);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds a value to r's set (copied; duplicates ignored). */
static int req_add_value(ls_req_t *r, const char *v, size_t len)
{
    for (size_t i = 0; i < r->nvalues; i++)
        if (strlen(r->values[i]) == len && memcmp(r->values[i], v, len) == 0)
            return 0;
    char **nv = realloc(r->values, (r->nvalues + 1) * sizeof(*nv));
    if (!nv)
        return SKIFF_ENOMEM;
    r->values = nv;
    char *copy = strndup(v, len);
    if (!copy)
        return SKIFF_ENOMEM;
    r->values[r->nvalues++] = copy;
    return 0;
}

/* Checks r (key, values, op arity) and appends it to sel; r is moved
 * into sel on success and cleared on failure. */
static int sel_add_req(label_selector_t *sel, ls_req_t *r, char *err, size_t errlen)
{
    int rc = check_label_key(r->key, err, errlen);
    if (rc < 0)
        goto fail;
    switch (r->op) {
    case LS_IN:
    case LS_NOTIN:
        if (r->nvalues == 0) {
            rc = fail(err, errlen,
                      "unable to parse requirement: for 'in', 'notin' operators, values set "
                      "can't be empty (key \"%s\")",
                      r->key);
            goto fail;
        }
        break;
    case LS_EQ:
    case LS_DEQ:
    case LS_NEQ:
        if (r->nvalues != 1) {
            rc = fail(err, errlen,
                      "unable to parse requirement: exact-match compatibility requires one "
                      "single value (key \"%s\")",
                      r->key);
            goto fail;
        }
        break;
    case LS_EXISTS:
    case LS_NOTEXIST:
        if (r->nvalues != 0) {
            rc = fail(err, errlen,
                      "unable to parse requirement: values set must be empty for exists and "
                      "does not exist (key \"%s\")",
                      r->key);
            goto fail;
        }
        break;
    case LS_GT:
    case LS_LT: {
        char *end = NULL;
        errno = 0;
        if (r->nvalues != 1 || !r->values[0][0])
            goto notint;
        r->num = strtoll(r->values[0], &end, 10);
        if (errno || *end)
            goto notint;
        break;
    notint:
        rc = fail(err, errlen,
                  "unable to parse requirement: for 'gt', 'lt' operators, the value must be a "
                  "single integer (key \"%s\")",
                  r->key);
        goto fail;
    }
    }
    if (r->op != LS_GT && r->op != LS_LT) {
        for (size_t i = 0; i < r->nvalues; i++) {
            rc = check_label_value(r->key, r->values[i], err, errlen);
            if (rc < 0)
                goto fail;
        }
    }
    if (r->nvalues > 1)
        qsort(r->values, r->nvalues, sizeof(*r->values), cmp_str);
    ls_req_t *nr = realloc(sel->reqs, (sel->n + 1) * sizeof(*nr));
    if (!nr) {
        rc = SKIFF_ENOMEM;
        goto fail;
    }
    sel->reqs = nr;
    sel->reqs[sel->n++] = *r;
    memset(r, 0, sizeof(*r));
    return 0;
fail:
    req_clear(r);
    return rc;
}

/* Stable insertion sort by key: selectors have a handful of terms, and
 * terms on one key keep the order they were written in. */
static void sel_sort(label_selector_t *sel)
{
    for (size_t i = 1; i < sel->n; i++) {
        ls_req_t cur = sel->reqs[i];
        size_t j = i;
        while (j > 0 && strcmp(sel->reqs[j - 1].key, cur.key) > 0) {
            sel->reqs[j] = sel->reqs[j - 1];
            j--;
        }
        sel->reqs[j] = cur;
    }
}

/* ---- label selector string grammar --------------------------------------- */

typedef enum tok {
    T_END,
    T_IDENT,
    T_NOT,   /* ! */
    T_EQ,    /* = */
    T_DEQ,   /* == */
    T_NEQ,   /* != */
    T_IN,
    T_NOTIN,
    T_LPAR,
    T_RPAR,
    T_COMMA,
    T_GT,
    T_LT,
} tok_t;

typedef struct lexer {
    const char *s;
    size_t pos;
    /* the token just read */
    tok_t tok;
    const char *lit;
    size_t len;
} lexer_t;

static int is_special(char c)
{
    return c == '!' || c == '=' || c == '(' || c == ')' || c == ',' || c == '<' || c == '>';
}

/* Reads the next token. In values mode (inside "( )" and after "="),
 * "in" and "notin" are plain identifiers. */
static tok_t lex(lexer_t *l, int values_mode)
{
    while (isspace((unsigned char)l->s[l->pos]))
        l->pos++;
    const char *p = l->s + l->pos;
    l->lit = p;
    l->len = 0;
    if (!*p)
        return l->tok = T_END;
    if (is_special(*p)) {
        static const struct {
            const char *text;
            tok_t tok;
        } sym[] = {{"!=", T_NEQ}, {"==", T_DEQ}, {"!", T_NOT}, {"=", T_EQ},   {"(", T_LPAR},
                   {")", T_RPAR}, {",", T_COMMA}, {">", T_GT}, {"<", T_LT}};
        for (size_t i = 0; i < sizeof(sym) / sizeof(sym[0]); i++) {
            size_t n = strlen(sym[i].text);
            if (strncmp(p, sym[i].text, n) == 0) {
                l->len = n;
                l->pos += n;
                return l->tok = sym[i].tok;
            }
        }
    }
    size_t n = 0;
    while (p[n] && !isspace((unsigned char)p[n]) && !is_special(p[n]))
        n++;
    l->len = n;
    l->pos += n;
    if (!values_mode && n == 2 && strncmp(p, "in", 2) == 0)
        return l->tok = T_IN;
    if (!values_mode && n == 5 && strncmp(p, "notin", 5) == 0)
        return l->tok = T_NOTIN;
    return l->tok = T_IDENT;
}

static int found(const lexer_t *l, const char *expected, char *err, size_t errlen)
{
    if (l->tok == T_END)
        return fail(err, errlen, "unable to parse requirement: found end of string, expected: %s",
                    expected);
    return fail(err, errlen, "unable to parse requirement: found '%.*s', expected: %s",
                (int)(l->len > 64 ? 64 : l->len), l->lit, expected);
}

/* "( v1, v2 )", the "(" already read. Empty items count as "" as in Kubernetes. */
static int parse_value_set(lexer_t *l, ls_req_t *r, char *err, size_t errlen)
{
    int rc;
    int want_value = 1;
    for (;;) {
        tok_t t = lex(l, 1);
        if (t == T_IDENT && want_value) {
            if ((rc = req_add_value(r, l->lit, l->len)) < 0)
                return rc;
            want_value = 0;
        } else if (t == T_COMMA) {
            if (want_value && (rc = req_add_value(r, "", 0)) < 0)
                return rc;
            want_value = 1;
        } else if (t == T_RPAR) {
            if (want_value && r->nvalues > 0 && (rc = req_add_value(r, "", 0)) < 0)
                return rc;
            return 0;
        } else {
            return found(l, want_value ? "',', ')' or identifier" : "',' or ')'", err, errlen);
        }
    }
}

static int parse_requirement(lexer_t *l, label_selector_t *sel, char *err, size_t errlen)
{
    ls_req_t r = {0};
    int rc;
    int negated = l->tok == T_NOT;
    if (negated && lex(l, 0) != T_IDENT)
        return found(l, "identifier", err, errlen);
    if (!(r.key = strndup(l->lit, l->len)))
        return SKIFF_ENOMEM;

    /* peek: "key" alone (followed by "," or the end) means exists */
    size_t save = l->pos;
    tok_t t = lex(l, 0);
    if (negated || t == T_COMMA || t == T_END) {
        if (negated && t != T_COMMA && t != T_END) {
            rc = found(l, "',' or end of string", err, errlen);
            req_clear(&r);
            return rc;
        }
        l->pos = save;
        r.op = negated ? LS_NOTEXIST : LS_EXISTS;
        return sel_add_req(sel, &r, err, errlen);
    }
    switch (t) {
    case T_IN:
    case T_NOTIN:
        r.op = t == T_IN ? LS_IN : LS_NOTIN;
        if (lex(l, 1) != T_LPAR) {
            rc = found(l, "'('", err, errlen);
            goto fail;
        }
        if ((rc = parse_value_set(l, &r, err, errlen)) < 0)
            goto fail;
        break;
    case T_EQ:
    case T_DEQ:
    case T_NEQ:
    case T_GT:
    case T_LT:
        r.op = t == T_EQ ? LS_EQ : t == T_DEQ ? LS_DEQ : t == T_NEQ ? LS_NEQ
             : t == T_GT ? LS_GT : LS_LT;
        save = l->pos;
        t = lex(l, 1);
        if (t == T_COMMA || t == T_END) {
            l->pos = save; /* "key=" selects the empty value */
            rc = req_add_value(&r, "", 0);
        } else if (t == T_IDENT) {
            rc = req_add_value(&r, l->lit, l->len);
        } else {
            rc = found(l, "identifier", err, errlen);
        }
        if (rc < 0)
            goto fail;
        break;
    default:
        rc = found(l, "in, notin, =, ==, !=, gt, lt", err, errlen);
        goto fail;
    }
    return sel_add_req(sel, &r, err, errlen);
fail:
    req_clear(&r);
    return rc;
}

int label_selector_parse(const char *s, label_selector_t **out, char *err, size_t errlen)
{
    *out = NULL;
    label_selector_t *sel = calloc(1, sizeof(*sel));
    if (!sel)
        return SKIFF_ENOMEM;
    lexer_t l = {.s = s ? s : ""};
    int rc = 0;
    tok_t t = lex(&l, 0);
    if (t != T_END) {
        for (;;) {
            if (t != T_IDENT && t != T_NOT) {
                rc = found(&l, "!, identifier, or end of string", err, errlen);
                break;
            }
            if ((rc = parse_requirement(&l, sel, err, errlen)) < 0)
                break;
            t = lex(&l, 0);
            if (t == T_END)
                break;
            if (t != T_COMMA) {
                rc = found(&l, "',' or end of string", err, errlen);
                break;
            }
            t = lex(&l, 0);
        }
    }
    if (rc < 0) {
        label_selector_free(sel);
        return rc;
    }
    sel_sort(sel);
    *out = sel;
    return 0;
}

/* ---- metav1.LabelSelector ------------------------------------------------- */

int label_selector_from_json(const json_t *js, label_selector_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (js && !json_is_object(js) && !json_is_null(js))
        return fail(err, errlen, "label selector must be an object");
    label_selector_t *sel = calloc(1, sizeof(*sel));
    if (!sel)
        return SKIFF_ENOMEM;
    int rc = 0;
    json_t *ml = json_object_get(js, "matchLabels");
    json_t *me = json_object_get(js, "matchExpressions");
    if (ml && !json_is_null(ml)) {
        if (!json_is_object(ml)) {
            rc = fail(err, errlen, "matchLabels must be an object of strings");
            goto out;
        }
        const char *k;
        json_t *v;
        json_object_foreach(ml, k, v) {
            if (!json_is_string(v)) {
                rc = fail(err, errlen, "matchLabels[%s] must be a string", k);
                goto out;
            }
            ls_req_t r = {.op = LS_EQ};
            if (!(r.key = strdup(k)) ||
                req_add_value(&r, json_string_value(v), json_string_length(v)) < 0) {
                req_clear(&r);
                rc = SKIFF_ENOMEM;
                goto out;
            }
            if ((rc = sel_add_req(sel, &r, err, errlen)) < 0)
                goto out;
        }
    }
    if (me && !json_is_null(me)) {
        if (!json_is_array(me)) {
            rc = fail(err, errlen, "matchExpressions must be a list");
            goto out;
        }
        size_t i;
        json_t *e;
        json_array_foreach(me, i, e) {
            const char *key = json_string_value(json_object_get(e, "key"));
            const char *op = json_string_value(json_object_get(e, "operator"));
            json_t *vals = json_object_get(e, "values");
            if (!key || !op) {
                rc = fail(err, errlen, "matchExpressions[%zu]: key and operator are required", i);
                goto out;
            }
            ls_req_t r = {0};
            if (!strcmp(op, "In"))
                r.op = LS_IN;
            else if (!strcmp(op, "NotIn"))
                r.op = LS_NOTIN;
            else if (!strcmp(op, "Exists"))
                r.op = LS_EXISTS;
            else if (!strcmp(op, "DoesNotExist"))
                r.op = LS_NOTEXIST;
            else {
                rc = fail(err, errlen,
                          "matchExpressions[%zu]: \"%s\" is not a valid label selector operator "
                          "(want In, NotIn, Exists or DoesNotExist)",
                          i, op);
                goto out;
            }
            if (vals && !json_is_null(vals) && !json_is_array(vals)) {
                rc = fail(err, errlen, "matchExpressions[%zu].values must be a list", i);
                goto out;
            }
            if (!(r.key = strdup(key))) {
                rc = SKIFF_ENOMEM;
                goto out;
            }
            size_t j;
            json_t *v;
            json_array_foreach(vals, j, v) {
                if (!json_is_string(v)) {
                    req_clear(&r);
                    rc = fail(err, errlen, "matchExpressions[%zu].values[%zu] must be a string",
                              i, j);
                    goto out;
                }
                if ((rc = req_add_value(&r, json_string_value(v), json_string_length(v))) < 0) {
                    req_clear(&r);
                    goto out;
                }
            }
            if ((rc = sel_add_req(sel, &r, err, errlen)) < 0)
                goto out;
        }
    }
    sel_sort(sel);
out:
    if (rc < 0) {
        label_selector_free(sel);
        return rc;
    }
    *out = sel;
    return 0;
}

/* ---- label matching (allocation-free) ------------------------------------ */

static int in_values(const ls_req_t *r, const char *v)
{
    /* values are sorted: binary search */
    size_t lo = 0, hi = r->nvalues;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(r->values[mid], v);
        if (c == 0)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static int req_matches(const ls_req_t *r, const json_t *labels)
{
    json_t *lv = labels ? json_object_get(labels, r->key) : NULL;
    const char *v = json_string_value(lv);
    switch (r->op) {
    case LS_EQ:
    case LS_DEQ:
    case LS_IN:
        return v && in_values(r, v);
    case LS_NEQ:
    case LS_NOTIN:
        return !v || !in_values(r, v);
    case LS_EXISTS:
        return lv != NULL;
    case LS_NOTEXIST:
        return lv == NULL;
    case LS_GT:
    case LS_LT: {
        if (!v || !*v)
            return 0;
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || *end)
            return 0;
        return r->op == LS_GT ? n > r->num : n < r->num;
    }
    }
    return 0;
}

int label_selector_matches(const label_selector_t *sel, const json_t *labels)
{
    if (!sel)
        return 1;
    for (size_t i = 0; i < sel->n; i++)
        if (!req_matches(&sel->reqs[i], labels))
            return 0;
    return 1;
}

int label_selector_empty(const label_selector_t *sel)
{
    return !sel || sel->n == 0;
}

/* ---- canonical string ----------------------------------------------------- */



char *label_selector_string(const label_selector_t *sel)
{
    strbuf_t b = {0};
    strbuf_add(&b, "");
    for (size_t i = 0; sel && i < sel->n; i++) {
        const ls_req_t *r = &sel->reqs[i];
        if (i)
            strbuf_add(&b, ",");
        if (r->op == LS_NOTEXIST)
            strbuf_add(&b, "!");
        strbuf_add(&b, r->key);
        switch (r->op) {
        case LS_EQ: strbuf_add(&b, "="); break;
        case LS_DEQ: strbuf_add(&b, "=="); break;
        case LS_NEQ: strbuf_add(&b, "!="); break;
        case LS_GT: strbuf_add(&b, ">"); break;
        case LS_LT: strbuf_add(&b, "<"); break;
        case LS_IN: strbuf_add(&b, " in ("); break;
        case LS_NOTIN: strbuf_add(&b, " notin ("); break;
        case LS_EXISTS:
        case LS_NOTEXIST: break;
        }
        for (size_t j = 0; j < r->nvalues; j++) {
            if (j)
                strbuf_add(&b, ",");
            strbuf_add(&b, r->values[j]);
        }
        if (r->op == LS_IN || r->op == LS_NOTIN)
            strbuf_add(&b, ")");
    }
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* ---- field selectors ------------------------------------------------------- */

static void term_clear(fs_term_t *t)
{
    free(t->path);
    free(t->segs);
    free(t->value);
}

void field_selector_free(field_selector_t *sel)
{
    if (!sel)
        return;
    for (size_t i = 0; i < sel->n; i++)
        term_clear(&sel->terms[i]);
    free(sel->terms);
    free(sel);
}

/* Unescapes a value (`\,` `\=` `\\`); an unescaped ',' or '=' is an error. */
static int unescape_value(const char *s, size_t len, char **out, const char *term, char *err,
                          size_t errlen)
{
    char *v = malloc(len + 1);
    if (!v)
        return SKIFF_ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '\\') {
            if (i + 1 >= len || (s[i + 1] != '\\' && s[i + 1] != ',' && s[i + 1] != '=')) {
                free(v);
                return fail(err, errlen,
                            "invalid field selector: '%s': invalid escape sequence '\\%.1s' (use "
                            "\\\\, \\, or \\=)",
                            term, i + 1 < len ? s + i + 1 : "");
            }
            v[o++] = s[++i];
            continue;
        }
        if (c == '=' || c == ',') {
            free(v);
            return fail(err, errlen,
                        "invalid field selector: '%s': unescaped '%c' in the value (write \\%c)",
                        term, c, c);
        }
        v[o++] = c;
    }
    v[o] = '\0';
    *out = v;
    return 0;
}

static int parse_term(const char *term, size_t len, fs_term_t *t, char *err, size_t errlen)
{
    char shown[256];
    snprintf(shown, sizeof(shown), "%.*s", (int)(len > 200 ? 200 : len), term);
    /* the operator is the first "!=", "==" or "=" not inside an escape */
    size_t i, oplen = 0;
    for (i = 0; i < len; i++) {
        if (term[i] == '\\') {
            i++;
            continue;
        }
        if (term[i] == '!' && i + 1 < len && term[i + 1] == '=') {
            oplen = 2;
            t->neg = 1;
            break;
        }
        if (term[i] == '=') {
            oplen = i + 1 < len && term[i + 1] == '=' ? 2 : 1;
            break;
        }
    }
    if (!oplen)
        return fail(err, errlen,
                    "invalid field selector: '%s': expected an operator (=, == or !=)", shown);
    size_t ps = 0, pe = i;
    while (ps < pe && isspace((unsigned char)term[ps]))
        ps++;
    while (pe > ps && isspace((unsigned char)term[pe - 1]))
        pe--;
    if (ps == pe)
        return fail(err, errlen, "invalid field selector: '%s': the field path is empty", shown);
    for (size_t k = ps; k < pe; k++)
        if (term[k] == '\\')
            return fail(err, errlen, "invalid field selector: '%s': escapes are only allowed "
                                     "in the value", shown);
    if (!(t->path = strndup(term + ps, pe - ps)) || !(t->segs = strndup(term + ps, pe - ps)))
        return SKIFF_ENOMEM;
    t->nsegs = 1;
    for (char *c = t->segs; *c; c++) {
        if (*c == '.') {
            *c = '\0';
            t->nsegs++;
        }
    }
    /* no empty segments: "a..b", ".a", "a." */
    const char *seg = t->segs;
    for (size_t k = 0; k < t->nsegs; k++) {
        if (!*seg)
            return fail(err, errlen, "invalid field selector: '%s': bad field path \"%s\"",
                        shown, t->path);
        seg += strlen(seg) + 1;
    }
    return unescape_value(term + i + oplen, len - i - oplen, &t->value, shown, err, errlen);
}

int field_selector_parse(const char *s, field_selector_t **out, char *err, size_t errlen)
{
    *out = NULL;
    field_selector_t *sel = calloc(1, sizeof(*sel));
    if (!sel)
        return SKIFF_ENOMEM;
    int rc = 0;
    if (!s)
        s = "";
    size_t len = strlen(s);
    /* an all-blank selector selects everything */
    size_t k = 0;
    while (k < len && isspace((unsigned char)s[k]))
        k++;
    size_t start = 0;
    for (size_t i = 0; k < len && i <= len; i++) {
        if (i < len && s[i] == '\\') {
            if (i + 1 < len)
                i++;
            continue;
        }
        if (i < len && s[i] != ',')
            continue;
        /* a term ends at an unescaped ',' or at the end */
        fs_term_t *nt = realloc(sel->terms, (sel->n + 1) * sizeof(*nt));
        if (!nt) {
            rc = SKIFF_ENOMEM;
            break;
        }
        sel->terms = nt;
        fs_term_t *t = &sel->terms[sel->n++];
        memset(t, 0, sizeof(*t));
        if ((rc = parse_term(s + start, i - start, t, err, errlen)) < 0)
            break;
        start = i + 1;
    }
    if (rc < 0) {
        field_selector_free(sel);
        return rc;
    }
    *out = sel;
    return 0;
}

/* The value at t's path as a string without allocating: strings as they
 * are, integers and booleans in their JSON spelling (in buf), a missing
 * field or null as "". NULL for objects, arrays and other numbers. */
static const char *field_value(const fs_term_t *t, const json_t *obj, char *buf, size_t len)
{
    const json_t *cur = obj;
    const char *seg = t->segs;
    for (size_t i = 0; i < t->nsegs; i++) {
        cur = json_object_get(cur, seg);
        if (!cur)
            return "";
        seg += strlen(seg) + 1;
    }
    switch (json_typeof(cur)) {
    case JSON_STRING: return json_string_value(cur);
    case JSON_NULL: return "";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_INTEGER:
        snprintf(buf, len, "%lld", (long long)json_integer_value(cur));
        return buf;
    default: return NULL;
    }
}

int field_selector_matches(const field_selector_t *sel, const json_t *obj)
{
    if (!sel)
        return 1;
    for (size_t i = 0; i < sel->n; i++) {
        const fs_term_t *t = &sel->terms[i];
        char buf[32];
        const char *v = field_value(t, obj, buf, sizeof(buf));
        int eq = v && strcmp(v, t->value) == 0;
        if (eq == t->neg)
            return 0;
    }
    return 1;
}

int field_selector_empty(const field_selector_t *sel)
{
    return !sel || sel->n == 0;
}

const char *field_selector_require(const field_selector_t *sel, const char *path)
{
    for (size_t i = 0; sel && i < sel->n; i++)
        if (!sel->terms[i].neg && strcmp(sel->terms[i].path, path) == 0)
            return sel->terms[i].value;
    return NULL;
}

size_t field_selector_count(const field_selector_t *sel)
{
    return sel ? sel->n : 0;
}

const char *field_selector_path(const field_selector_t *sel, size_t i)
{
    return sel && i < sel->n ? sel->terms[i].path : NULL;
}
