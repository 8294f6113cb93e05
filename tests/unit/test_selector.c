/* tests/unit/test_selector.c - label and field selectors: parse, match, errors, strings.
 *
 * Cases follow what `kubectl get -l ...` and `--field-selector ...` send and
 * what the scale subresource prints in status.selector. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <skiff/errors.h>

#include "api/selector.h"

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (!v)
        fail_msg("bad test JSON (%s): %s", e.text, text);
    return v;
}

static label_selector_t *parse_ok(const char *s)
{
    label_selector_t *sel = NULL;
    char err[256] = "";
    int rc = label_selector_parse(s, &sel, err, sizeof(err));
    if (rc != 0)
        fail_msg("parse \"%s\": %s", s, err);
    assert_non_null(sel);
    return sel;
}

/* labels_json: the object's labels; want: 1 when it must match. */
static void check_match(const char *selector, const char *labels_json, int want)
{
    label_selector_t *sel = parse_ok(selector);
    json_t *labels = labels_json ? J(labels_json) : NULL;
    int got = label_selector_matches(sel, labels);
    if (got != want)
        fail_msg("selector \"%s\" on %s: got %d, want %d", selector,
                 labels_json ? labels_json : "(no labels)", got, want);
    json_decref(labels);
    label_selector_free(sel);
}

static void check_string(const char *selector, const char *want)
{
    label_selector_t *sel = parse_ok(selector);
    char *s = label_selector_string(sel);
    assert_non_null(s);
    assert_string_equal(s, want);
    free(s);
    label_selector_free(sel);
}

static void check_parse_error(const char *selector, const char *msg_part)
{
    label_selector_t *sel = (label_selector_t *)1;
    char err[300] = "";
    assert_int_equal(label_selector_parse(selector, &sel, err, sizeof(err)), SKIFF_EINVAL);
    assert_null(sel);
    if (!strstr(err, msg_part))
        fail_msg("selector \"%s\": message \"%s\" lacks \"%s\"", selector, err, msg_part);
}

static void test_label_empty(void **state)
{
    const char *empties[] = {NULL, "", "   "};
    for (size_t i = 0; i < 3; i++) {
        label_selector_t *sel = parse_ok(empties[i]);
        assert_true(label_selector_empty(sel));
        json_t *labels = J("{\"a\":\"b\"}");
        assert_true(label_selector_matches(sel, labels));
        assert_true(label_selector_matches(sel, NULL));
        char *s = label_selector_string(sel);
        assert_string_equal(s, "");
        free(s);
        json_decref(labels);
        label_selector_free(sel);
    }
    label_selector_t *sel = parse_ok("a");
    assert_false(label_selector_empty(sel));
    label_selector_free(sel);
}

static void test_label_equality(void **state)
{
    check_match("app=web", "{\"app\":\"web\",\"x\":\"y\"}", 1);
    check_match("app=web", "{\"app\":\"db\"}", 0);
    check_match("app=web", "{}", 0);
    check_match("app=web", NULL, 0);
    check_match("app==web", "{\"app\":\"web\"}", 1);
    check_match("app!=web", "{\"app\":\"db\"}", 1);
    check_match("app!=web", "{}", 1);
    check_match("app!=web", "{\"app\":\"web\"}", 0);
    /* "key=" selects the empty value, not a missing label */
    check_match("a=", "{\"a\":\"\"}", 1);
    check_match("a=", "{}", 0);
    check_match("app.kubernetes.io/name=web", "{\"app.kubernetes.io/name\":\"web\"}", 1);
    /* "in" and "notin" are values after '=' */
    check_match("mode=in", "{\"mode\":\"in\"}", 1);
}

static void test_label_sets_and_existence(void **state)
{
    check_match("tier in (fe,be)", "{\"tier\":\"be\"}", 1);
    check_match("tier in (fe,be)", "{\"tier\":\"db\"}", 0);
    check_match("tier in (fe,be)", "{}", 0);
    check_match("tier notin (fe,be)", "{\"tier\":\"db\"}", 1);
    check_match("tier notin (fe,be)", "{}", 1);
    check_match("tier notin (fe,be)", "{\"tier\":\"fe\"}", 0);
    check_match("tier", "{\"tier\":\"\"}", 1);
    check_match("tier", "{}", 0);
    check_match("!tier", "{}", 1);
    check_match("!tier", "{\"tier\":\"x\"}", 0);
    /* (a,) holds a and the empty value */
    check_match("tier in (a,)", "{\"tier\":\"\"}", 1);
    /* all terms must hold */
    const char *sel = "app=web,tier in (fe,be),!canary";
    check_match(sel, "{\"app\":\"web\",\"tier\":\"fe\"}", 1);
    check_match(sel, "{\"app\":\"web\",\"tier\":\"fe\",\"canary\":\"1\"}", 0);
    check_match(sel, "{\"app\":\"db\",\"tier\":\"fe\"}", 0);
    /* whitespace anywhere between tokens */
    check_match("  app = web ,  tier  in ( fe , be ) , ! canary ", "{\"app\":\"web\",\"tier\":"
                "\"be\"}", 1);
    /* integer comparisons */
    check_match("gen>5", "{\"gen\":\"7\"}", 1);
    check_match("gen>5", "{\"gen\":\"5\"}", 0);
    check_match("gen<5", "{\"gen\":\"x\"}", 0);
    check_match("gen<5", "{\"gen\":\"-2\"}", 1);
}

static void test_label_string(void **state)
{
    check_string("tier in (b,a),app=web", "app=web,tier in (a,b)");
    check_string("z,!y,x!=1,w==2", "w==2,x!=1,!y,z");
    check_string("a notin ( z , y, z )", "a notin (y,z)");
    check_string("  app = web ", "app=web");
    check_string("n>3,n<9", "n>3,n<9");
    check_string("a=", "a=");
}

static void test_label_parse_errors(void **state)
{
    check_parse_error("a b", "unable to parse requirement: found 'b', expected: in, notin, =");
    check_parse_error("a in b", "found 'b', expected: '('");
    check_parse_error("a in ()", "values set can't be empty");
    check_parse_error("a in (x", "found end of string, expected: ',' or ')'");
    check_parse_error("a in (x y)", "found 'y', expected: ',' or ')'");
    check_parse_error("=b", "found '=', expected: !, identifier, or end of string");
    check_parse_error("a=b c", "found 'c', expected: ',' or end of string");
    check_parse_error("a=b,", "found end of string, expected: !, identifier");
    check_parse_error("a=(b)", "found '(', expected: identifier");
    check_parse_error("!a=b", "found '=', expected: ',' or end of string");
    check_parse_error("!", "found end of string, expected: identifier");
    check_parse_error("-a=b", "invalid label key \"-a\"");
    check_parse_error("Example.com/a=b", "invalid label key \"Example.com/a\": prefix");
    check_parse_error("a=-x", "invalid label value \"-x\" for key \"a\"");
    check_parse_error("a in (ok,b@d)", "invalid label value \"b@d\"");
    check_parse_error("n>x", "'gt', 'lt' operators");
    char longkey[80];
    memset(longkey, 'k', 64);
    strcpy(longkey + 64, "=v");
    check_parse_error(longkey, "invalid label key");
}

static label_selector_t *from_json_ok(const char *text)
{
    json_t *js = text ? J(text) : NULL;
    label_selector_t *sel = NULL;
    char err[256] = "";
    if (label_selector_from_json(js, &sel, err, sizeof(err)) != 0)
        fail_msg("from_json %s: %s", text, err);
    json_decref(js);
    return sel;
}

static void test_label_from_json(void **state)
{
    label_selector_t *sel = from_json_ok(
        "{\"matchLabels\":{\"tier\":\"fe\",\"app\":\"web\"},\"matchExpressions\":["
        "{\"key\":\"env\",\"operator\":\"In\",\"values\":[\"prod\",\"dev\"]},"
        "{\"key\":\"zone\",\"operator\":\"NotIn\",\"values\":[\"b\"]},"
        "{\"key\":\"x\",\"operator\":\"DoesNotExist\"},"
        "{\"key\":\"track\",\"operator\":\"Exists\",\"values\":[]}]}");
    char *s = label_selector_string(sel);
    assert_string_equal(s, "app=web,env in (dev,prod),tier=fe,track,!x,zone notin (b)");
    free(s);
    json_t *yes = J("{\"app\":\"web\",\"tier\":\"fe\",\"env\":\"dev\",\"track\":\"s\"}");
    json_t *no = J("{\"app\":\"web\",\"tier\":\"fe\",\"env\":\"dev\",\"track\":\"s\",\"x\":\"1\"}");
    assert_true(label_selector_matches(sel, yes));
    assert_false(label_selector_matches(sel, no));
    json_decref(yes);
    json_decref(no);
    label_selector_free(sel);

    /* the scale subresource's status.selector for a Deployment */
    sel = from_json_ok("{\"matchLabels\":{\"app\":\"web\"}}");
    s = label_selector_string(sel);
    assert_string_equal(s, "app=web");
    free(s);
    label_selector_free(sel);

    const char *everything[] = {NULL, "{}", "null", "{\"matchLabels\":{},\"matchExpressions\":[]}"};
    for (size_t i = 0; i < 4; i++) {
        sel = from_json_ok(everything[i]);
        assert_true(label_selector_empty(sel));
        assert_true(label_selector_matches(sel, NULL));
        label_selector_free(sel);
    }
}

static void check_json_error(const char *text, const char *msg_part)
{
    json_t *js = J(text);
    label_selector_t *sel = NULL;
    char err[256] = "";
    assert_int_equal(label_selector_from_json(js, &sel, err, sizeof(err)), SKIFF_EINVAL);
    assert_null(sel);
    if (!strstr(err, msg_part))
        fail_msg("%s: message \"%s\" lacks \"%s\"", text, err, msg_part);
    json_decref(js);
}

static void test_label_from_json_errors(void **state)
{
    check_json_error("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Foo\"}]}",
                     "\"Foo\" is not a valid label selector operator");
    check_json_error("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":[]}]}",
                     "values set can't be empty");
    check_json_error("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\","
                     "\"values\":[\"x\"]}]}",
                     "values set must be empty");
    check_json_error("{\"matchExpressions\":[{\"operator\":\"Exists\"}]}", "key and operator");
    check_json_error("{\"matchLabels\":{\"a\":1}}", "matchLabels[a] must be a string");
    check_json_error("{\"matchLabels\":{\"a\":\"not ok\"}}", "invalid label value \"not ok\"");
    check_json_error("{\"matchLabels\":{\"a b\":\"x\"}}", "invalid label key \"a b\"");
    check_json_error("[1]", "must be an object");
}

/* ---- field selectors ------------------------------------------------------ */

static field_selector_t *field_ok(const char *s)
{
    field_selector_t *sel = NULL;
    char err[256] = "";
    if (field_selector_parse(s, &sel, err, sizeof(err)) != 0)
        fail_msg("field selector \"%s\": %s", s, err);
    assert_non_null(sel);
    return sel;
}

static void check_field(const char *selector, const char *obj_json, int want)
{
    field_selector_t *sel = field_ok(selector);
    json_t *obj = J(obj_json);
    int got = field_selector_matches(sel, obj);
    if (got != want)
        fail_msg("field selector \"%s\" on %s: got %d, want %d", selector, obj_json, got, want);
    json_decref(obj);
    field_selector_free(sel);
}

static void check_field_error(const char *selector, const char *msg_part)
{
    field_selector_t *sel = (field_selector_t *)1;
    char err[256] = "";
    assert_int_equal(field_selector_parse(selector, &sel, err, sizeof(err)), SKIFF_EINVAL);
    assert_null(sel);
    if (!strstr(err, msg_part))
        fail_msg("field selector \"%s\": message \"%s\" lacks \"%s\"", selector, err, msg_part);
}

#define POD "{\"metadata\":{\"name\":\"web-1\",\"namespace\":\"default\"},\"spec\":{" \
            "\"nodeName\":\"n1\",\"replicas\":3,\"unschedulable\":true},"           \
            "\"status\":{\"phase\":\"Running\"}}"

static void test_field_match(void **state)
{
    check_field("metadata.name=web-1", POD, 1);
    check_field("metadata.name==web-1", POD, 1);
    check_field("metadata.name=web-2", POD, 0);
    check_field("metadata.name!=web-2", POD, 1);
    check_field("metadata.name!=web-1", POD, 0);
    check_field("metadata.name=web-1,status.phase=Running", POD, 1);
    check_field("metadata.name=web-1,status.phase!=Running", POD, 0);
    /* a missing field is "": unscheduled pods have spec.nodeName="" */
    check_field("spec.schedulerName=", POD, 1);
    check_field("spec.nodeName=", POD, 0);
    check_field("spec.nodeName!=", POD, 1);
    check_field("status.podIP!=", "{\"status\":{}}", 0);
    /* numbers and booleans in their JSON spelling */
    check_field("spec.replicas=3", POD, 1);
    check_field("spec.unschedulable=true", POD, 1);
    check_field("spec.unschedulable=false", POD, 0);
    /* an object is never equal to a string */
    check_field("spec=x", POD, 0);
    check_field("spec!=x", POD, 1);
    check_field(" metadata.namespace = default", "{\"metadata\":{\"namespace\":\" default\"}}",
                1);
}

static void test_field_escapes(void **state)
{
    const char *obj = "{\"metadata\":{\"name\":\"a,b=c\\\\d\"}}";
    check_field("metadata.name=a\\,b\\=c\\\\d", obj, 1);
    check_field("metadata.name!=a\\,b\\=c\\\\d,metadata.name=x", obj, 0);
    field_selector_t *sel = field_ok("metadata.name=a\\,b,spec.nodeName=n\\=1");
    assert_string_equal(field_selector_require(sel, "metadata.name"), "a,b");
    assert_string_equal(field_selector_require(sel, "spec.nodeName"), "n=1");
    field_selector_free(sel);
}

static void test_field_require_and_terms(void **state)
{
    field_selector_t *sel = field_ok("spec.nodeName==n1,metadata.name!=x,metadata.namespace=");
    assert_string_equal(field_selector_require(sel, "spec.nodeName"), "n1");
    assert_null(field_selector_require(sel, "metadata.name"));
    assert_string_equal(field_selector_require(sel, "metadata.namespace"), "");
    assert_null(field_selector_require(sel, "status.phase"));
    assert_int_equal(field_selector_count(sel), 3);
    assert_string_equal(field_selector_path(sel, 1), "metadata.name");
    assert_null(field_selector_path(sel, 3));
    assert_false(field_selector_empty(sel));
    field_selector_free(sel);

    const char *empties[] = {NULL, "", "  "};
    for (size_t i = 0; i < 3; i++) {
        sel = field_ok(empties[i]);
        assert_true(field_selector_empty(sel));
        json_t *obj = J(POD);
        assert_true(field_selector_matches(sel, obj));
        json_decref(obj);
        assert_null(field_selector_require(sel, "metadata.name"));
        field_selector_free(sel);
    }
}

static void test_field_errors(void **state)
{
    check_field_error("metadata.name", "expected an operator");
    check_field_error("=x", "the field path is empty");
    check_field_error("a=b=c", "unescaped '=' in the value");
    check_field_error("a=b\\x", "invalid escape sequence '\\x'");
    check_field_error("a=b\\", "invalid escape sequence");
    check_field_error("a=b,", "expected an operator");
    check_field_error("a..b=c", "bad field path \"a..b\"");
    check_field_error("a=1,,b=2", "expected an operator");
}

/* Random strings over the grammar's alphabet: parsing never crashes, fails
 * with a message, and a parsed selector prints to a string that parses
 * back to the same string (what scale status.selector round-trips). */
static void test_random_selectors(void **state)
{
    static const char *pieces[] = {"a", "b", "app", "x.io/k", "=", "==", "!=", "!", " in ",
                                   " notin ", "(", ")", ",", " ", "v", "-", "1", ">", "<", "\\",
                                   "in", "Z_9", "."};
    unsigned seed = 12345;
    for (int n = 0; n < 20000; n++) {
        char buf[128] = "";
        int parts = (int)(seed % 9);
        for (int i = 0; i < parts; i++) {
            seed = seed * 1103515245u + 12345u;
            strncat(buf, pieces[(seed >> 16) % (sizeof(pieces) / sizeof(pieces[0]))],
                    sizeof(buf) - strlen(buf) - 1);
        }
        seed = seed * 1103515245u + 12345u;

        label_selector_t *sel = NULL;
        char err[300] = "";
        int rc = label_selector_parse(buf, &sel, err, sizeof(err));
        if (rc == 0) {
            char *str = label_selector_string(sel);
            label_selector_t *again = NULL;
            if (label_selector_parse(str, &again, err, sizeof(err)) != 0)
                fail_msg("\"%s\" printed as \"%s\", which does not parse: %s", buf, str, err);
            char *str2 = label_selector_string(again);
            assert_string_equal(str, str2);
            free(str);
            free(str2);
            label_selector_free(again);
            label_selector_free(sel);
        } else {
            assert_int_equal(rc, SKIFF_EINVAL);
            assert_null(sel);
            assert_true(strlen(err) > 0);
        }

        field_selector_t *fs = NULL;
        err[0] = '\0';
        rc = field_selector_parse(buf, &fs, err, sizeof(err));
        if (rc == 0) {
            json_t *obj = J(POD);
            (void)field_selector_matches(fs, obj);
            json_decref(obj);
            field_selector_free(fs);
        } else {
            assert_int_equal(rc, SKIFF_EINVAL);
            assert_true(strlen(err) > 0);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_empty),
        cmocka_unit_test(test_label_equality),
        cmocka_unit_test(test_label_sets_and_existence),
        cmocka_unit_test(test_label_string),
        cmocka_unit_test(test_label_parse_errors),
        cmocka_unit_test(test_label_from_json),
        cmocka_unit_test(test_label_from_json_errors),
        cmocka_unit_test(test_field_match),
        cmocka_unit_test(test_field_escapes),
        cmocka_unit_test(test_field_require_and_terms),
        cmocka_unit_test(test_field_errors),
        cmocka_unit_test(test_random_selectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
