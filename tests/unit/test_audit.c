/* tests/unit/test_audit.c - the audit policy (first matching rule per user,
 * group, verb, resource, namespace, nonResourceURL; levels; omitStages) and
 * the audit log (audit.k8s.io/v1 Event lines in order, mode 0600, secrets
 * never logged, a stalled disk costs dropped events and never the loop). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <skiff/errors.h>

#include "security/audit.h"
#include "util/strbuf.h"

/* A policy shaped like the example in the Kubernetes auditing docs. */
static const char POLICY_YAML[] =
    "apiVersion: audit.k8s.io/v1\n"
    "kind: Policy\n"
    "omitStages:\n"
    "  - Panic\n"
    "rules:\n"
    "  # 0: kube-proxy watches are noise\n"
    "  - level: None\n"
    "    users: [\"system:kube-proxy\"]\n"
    "    verbs: [\"watch\"]\n"
    "    resources:\n"
    "      - group: \"\"\n"
    "        resources: [\"endpoints\", \"services\"]\n"
    "  # 1\n"
    "  - level: None\n"
    "    userGroups: [\"system:authenticated\"]\n"
    "    nonResourceURLs:\n"
    "      - \"/api*\"\n"
    "      - \"/version\"\n"
    "  # 2\n"
    "  - level: RequestResponse\n"
    "    namespaces: [\"kube-system\"]\n"
    "    resources:\n"
    "      - group: \"\"\n"
    "        resources: [\"configmaps\"]\n"
    "        resourceNames: [\"controller-leader\"]\n"
    "  # 3\n"
    "  - level: Metadata\n"
    "    resources:\n"
    "      - group: \"\"\n"
    "        resources: [\"secrets\", \"configmaps\"]\n"
    "  # 4\n"
    "  - level: Request\n"
    "    resources:\n"
    "      - group: \"\"\n"
    "        resources: [\"pods/log\", \"pods/status\"]\n"
    "  # 5\n"
    "  - level: RequestResponse\n"
    "    verbs: [\"create\", \"delete\"]\n"
    "    resources:\n"
    "      - group: \"apps\"\n"
    "  # 6\n"
    "  - level: Metadata\n"
    "    namespaces: [\"prod\"]\n"
    "    omitStages:\n"
    "      - \"RequestReceived\"\n"
    "  # 7\n"
    "  - level: Request\n"
    "    resources:\n"
    "      - group: \"\"\n"
    "        resources: [\"*/scale\", \"nodes/*\"]\n"
    "  # 8\n"
    "  - level: RequestResponse\n"
    "    users: [\"alice\"]\n"
    "  # 9: everything else\n"
    "  - level: Metadata\n";

static const char *const AUTHED[] = {"system:authenticated"};

static audit_attrs_t res_attrs(const char *user, const char *verb, const char *group,
                               const char *resource, const char *sub, const char *ns,
                               const char *name)
{
    audit_attrs_t a = {
        .username = user, .groups = AUTHED, .n_groups = 1, .verb = verb,
        .resource_request = 1, .path = "/api/v1/x", .api_group = group, .api_version = "v1",
        .resource = resource, .subresource = sub, .namespace_ = ns, .name = name,
    };
    return a;
}

static audit_policy_t *parse_ok(const char *text)
{
    audit_policy_t *p = NULL;
    char err[256] = "";
    int rc = audit_policy_parse(text, strlen(text), &p, err, sizeof err);
    if (rc != 0) fail_msg("policy: %s", err);
    return p;
}

static void check_level(const audit_policy_t *p, audit_attrs_t at, audit_level_t want,
                        unsigned want_omit)
{
    unsigned omit = 99;
    audit_level_t got = audit_policy_evaluate(p, &at, &omit);
    if (got != want || omit != want_omit)
        fail_msg("%s %s %s/%s%s%s ns=%s name=%s: got %s omit %u, want %s omit %u",
                 at.username, at.verb, at.api_group ? at.api_group : "", at.resource,
                 at.subresource ? "/" : "", at.subresource ? at.subresource : "",
                 at.namespace_ ? at.namespace_ : "", at.name ? at.name : "",
                 audit_level_name(got), omit, audit_level_name(want), want_omit);
}

static void check_policy_rules(const audit_policy_t *p)
{
    const unsigned PANIC = AUDIT_STAGE_PANIC;
    /* rule 0: user and verb and resource must all match */
    check_level(p, res_attrs("system:kube-proxy", "watch", "", "endpoints", NULL, "default", NULL),
                AUDIT_LEVEL_NONE, PANIC);
    check_level(p, res_attrs("system:kube-proxy", "list", "", "endpoints", NULL, "default", NULL),
                AUDIT_LEVEL_METADATA, PANIC);
    check_level(p, res_attrs("bob", "watch", "", "services", NULL, "default", NULL),
                AUDIT_LEVEL_METADATA, PANIC);
    /* rule 1: nonResourceURLs, by group; prefix and exact forms */
    audit_attrs_t nr = {.username = "bob", .groups = AUTHED, .n_groups = 1, .verb = "get",
                        .path = "/apis/apps"};
    check_level(p, nr, AUDIT_LEVEL_NONE, PANIC);
    nr.path = "/version";
    check_level(p, nr, AUDIT_LEVEL_NONE, PANIC);
    nr.path = "/version/x";
    check_level(p, nr, AUDIT_LEVEL_METADATA, PANIC);
    nr.path = "/healthz";
    check_level(p, nr, AUDIT_LEVEL_METADATA, PANIC);
    nr.path = "/apis/apps";
    nr.n_groups = 0; /* not in system:authenticated */
    check_level(p, nr, AUDIT_LEVEL_METADATA, PANIC);
    /* rule 2: namespace + resourceNames; rule 3 for other names and namespaces */
    check_level(p, res_attrs("bob", "update", "", "configmaps", NULL, "kube-system",
                             "controller-leader"),
                AUDIT_LEVEL_REQUEST_RESPONSE, PANIC);
    check_level(p, res_attrs("bob", "update", "", "configmaps", NULL, "kube-system", "other"),
                AUDIT_LEVEL_METADATA, PANIC);
    check_level(p, res_attrs("bob", "update", "", "configmaps", NULL, "default",
                             "controller-leader"),
                AUDIT_LEVEL_METADATA, PANIC);
    /* first match wins: alice (rule 8) reading secrets still gets rule 3 */
    check_level(p, res_attrs("alice", "get", "", "secrets", NULL, "default", "s"),
                AUDIT_LEVEL_METADATA, PANIC);
    check_level(p, res_attrs("alice", "get", "", "services", NULL, "default", "s"),
                AUDIT_LEVEL_REQUEST_RESPONSE, PANIC);
    /* rule 4: exact subresources; pods themselves fall through */
    check_level(p, res_attrs("bob", "get", "", "pods", "log", "default", "p"),
                AUDIT_LEVEL_REQUEST, PANIC);
    check_level(p, res_attrs("bob", "get", "", "pods", NULL, "default", "p"),
                AUDIT_LEVEL_METADATA, PANIC);
    check_level(p, res_attrs("bob", "get", "", "pods", "exec", "default", "p"),
                AUDIT_LEVEL_METADATA, PANIC);
    /* rule 5: whole group, by verb; the group must match exactly */
    check_level(p, res_attrs("bob", "create", "apps", "deployments", NULL, "default", NULL),
                AUDIT_LEVEL_REQUEST_RESPONSE, PANIC);
    check_level(p, res_attrs("bob", "delete", "apps", "statefulsets", "scale", "default", "x"),
                AUDIT_LEVEL_REQUEST_RESPONSE, PANIC);
    check_level(p, res_attrs("bob", "update", "apps", "deployments", NULL, "default", "d"),
                AUDIT_LEVEL_METADATA, PANIC);
    check_level(p, res_attrs("bob", "create", "batch", "jobs", NULL, "default", NULL),
                AUDIT_LEVEL_METADATA, PANIC);
    /* rule 6: namespace only, with its own omitStages added to the policy's */
    check_level(p, res_attrs("bob", "get", "", "pods", NULL, "prod", "p"), AUDIT_LEVEL_METADATA,
                PANIC | AUDIT_STAGE_REQUEST_RECEIVED);
    /* rule 7: any-resource scale and nodes any-subresource (subresources only) */
    check_level(p, res_attrs("bob", "update", "", "replicationcontrollers", "scale", "default", "r"),
                AUDIT_LEVEL_REQUEST, PANIC);
    check_level(p, res_attrs("bob", "update", "", "nodes", "status", NULL, "n1"),
                AUDIT_LEVEL_REQUEST, PANIC);
    check_level(p, res_attrs("bob", "update", "", "nodes", NULL, NULL, "n1"),
                AUDIT_LEVEL_METADATA, PANIC);
    /* a namespaced rule never matches a nonResourceURL and vice versa */
    nr.path = "/metrics";
    nr.username = "alice";
    check_level(p, nr, AUDIT_LEVEL_REQUEST_RESPONSE, PANIC);
}

static void test_policy_yaml_first_match(void **state)
{
    audit_policy_t *p = parse_ok(POLICY_YAML);
    check_policy_rules(p);
    audit_policy_free(p);
}

static void test_policy_json_same_rules(void **state)
{
    static const char json[] =
        "{\"apiVersion\":\"audit.k8s.io/v1\",\"kind\":\"Policy\",\"omitStages\":[\"Panic\"],"
        "\"rules\":["
        "{\"level\":\"None\",\"users\":[\"system:kube-proxy\"],\"verbs\":[\"watch\"],"
        " \"resources\":[{\"group\":\"\",\"resources\":[\"endpoints\",\"services\"]}]},"
        "{\"level\":\"None\",\"userGroups\":[\"system:authenticated\"],"
        " \"nonResourceURLs\":[\"/api*\",\"/version\"]},"
        "{\"level\":\"RequestResponse\",\"namespaces\":[\"kube-system\"],\"resources\":"
        " [{\"group\":\"\",\"resources\":[\"configmaps\"],\"resourceNames\":[\"controller-leader\"]}]},"
        "{\"level\":\"Metadata\",\"resources\":[{\"group\":\"\",\"resources\":[\"secrets\",\"configmaps\"]}]},"
        "{\"level\":\"Request\",\"resources\":[{\"group\":\"\",\"resources\":[\"pods/log\",\"pods/status\"]}]},"
        "{\"level\":\"RequestResponse\",\"verbs\":[\"create\",\"delete\"],\"resources\":[{\"group\":\"apps\"}]},"
        "{\"level\":\"Metadata\",\"namespaces\":[\"prod\"],\"omitStages\":[\"RequestReceived\"]},"
        "{\"level\":\"Request\",\"resources\":[{\"group\":\"\",\"resources\":[\"*/scale\",\"nodes/*\"]}]},"
        "{\"level\":\"RequestResponse\",\"users\":[\"alice\"]},"
        "{\"level\":\"Metadata\"}]}";
    audit_policy_t *p = parse_ok(json);
    check_policy_rules(p);
    audit_policy_free(p);
}

static void test_policy_empty_and_default(void **state)
{
    /* No rules: nothing is logged. */
    audit_policy_t *p = parse_ok("apiVersion: audit.k8s.io/v1\nkind: Policy\n");
    check_level(p, res_attrs("bob", "get", "", "pods", NULL, "default", "p"), AUDIT_LEVEL_NONE, 0);
    audit_policy_free(p);
    assert_int_equal(audit_policy_default_new(&p), 0);
    check_level(p, res_attrs("bob", "delete", "", "pods", NULL, "default", "p"),
                AUDIT_LEVEL_METADATA, AUDIT_STAGE_REQUEST_RECEIVED);
    audit_policy_free(p);
}

static void check_parse_error(const char *text, const char *want_in_err)
{
    audit_policy_t *p = NULL;
    char err[256] = "";
    int rc = audit_policy_parse(text, strlen(text), &p, err, sizeof err);
    if (rc != SKIFF_EINVAL) fail_msg("accepted: %s", text);
    assert_null(p);
    if (!strstr(err, want_in_err)) fail_msg("error \"%s\" lacks \"%s\"", err, want_in_err);
}

static void test_policy_errors(void **state)
{
    const char *head = "apiVersion: audit.k8s.io/v1\nkind: Policy\n";
    char buf[512];
    check_parse_error("apiVersion: audit.k8s.io/v1\nkind: Pod\n", "kind must be Policy");
    check_parse_error("apiVersion: v1\nkind: Policy\n", "apiVersion");
    snprintf(buf, sizeof buf, "%srules:\n  - level: Verbose\n", head);
    check_parse_error(buf, "rules[0].level: unknown level \"Verbose\"");
    snprintf(buf, sizeof buf, "%srules:\n  - level: None\n  - users: [a]\n", head);
    check_parse_error(buf, "rules[1].level: required");
    snprintf(buf, sizeof buf, "%somitStages: [Done]\nrules: []\n", head);
    check_parse_error(buf, "unknown stage \"Done\"");
    snprintf(buf, sizeof buf, "%srules:\n  - level: None\n    users: bob\n", head);
    check_parse_error(buf, "rules[0].users: must be a list");
    snprintf(buf, sizeof buf, "%srules:\n  - level: None\n    resources: [pods]\n", head);
    check_parse_error(buf, "rules[0].resources[0]: must be an object");
    snprintf(buf, sizeof buf,
             "%srules:\n  - level: None\n    nonResourceURLs: [/x]\n    namespaces: [a]\n", head);
    check_parse_error(buf, "nonResourceURLs cannot be combined");
    check_parse_error("kind: Policy\n  rules: [\n", "line");
    check_parse_error("{\"kind\": \"Policy\",}", "line 1");

    audit_policy_t *p = NULL;
    char err[256];
    assert_int_equal(audit_policy_load("/nonexistent/policy.yaml", &p, err, sizeof err),
                     SKIFF_EIO);
    assert_non_null(strstr(err, "/nonexistent/policy.yaml"));
}

/* --- the log ----------------------------------------------------------------- */

typedef struct tmpdir {
    char dir[64];
    char log[128];
} tmpdir_t;

static void tmp_make(tmpdir_t *t)
{
    strcpy(t->dir, "/tmp/skiff-audit-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->log, sizeof t->log, "%s/audit.log", t->dir);
}

static void tmp_remove(tmpdir_t *t)
{
    char p[160];
    snprintf(p, sizeof p, "%s/audit.log", t->dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/policy.yaml", t->dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/fifo", t->dir);
    unlink(p);
    rmdir(t->dir);
}

static void on_done(void *data) { (*(int *)data)++; }

static void close_and_run(uv_loop_t *loop, audit_t *a)
{
    int done = 0;
    audit_close(a, on_done, &done);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(done, 1);
}

/* Every line of the file parsed; *n receives the count. */
static json_t **read_lines(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    json_t **v = NULL;
    size_t cnt = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        assert_int_equal(line[len - 1], '\n');
        json_error_t e;
        json_t *j = json_loadb(line, (size_t)len, 0, &e);
        if (!j) fail_msg("line %zu is not JSON (%s): %s", cnt + 1, e.text, line);
        v = realloc(v, (cnt + 1) * sizeof *v);
        v[cnt++] = j;
    }
    free(line);
    fclose(f);
    *n = cnt;
    return v;
}

static void free_lines(json_t **v, size_t n)
{
    for (size_t i = 0; i < n; i++) json_decref(v[i]);
    free(v);
}

static const char *S(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "(missing)";
}

static void assert_matches(const char *s, const char *pattern)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, s, 0, NULL, 0);
    regfree(&re);
    if (rc != 0) fail_msg("\"%s\" does not match %s", s, pattern);
}

static audit_t *open_log(uv_loop_t *loop, tmpdir_t *t, const char *policy_yaml)
{
    audit_t *a = NULL;
    char err[256] = "";
    const char *pp = NULL;
    char ppath[160];
    if (policy_yaml) {
        snprintf(ppath, sizeof ppath, "%s/policy.yaml", t->dir);
        FILE *f = fopen(ppath, "w");
        assert_non_null(f);
        fputs(policy_yaml, f);
        fclose(f);
        pp = ppath;
    }
    int rc = audit_open(loop, t->log, pp, &a, err, sizeof err);
    if (rc != 0) fail_msg("audit_open: %s", err);
    return a;
}

static void test_event_fields_and_stages(void **state)
{
    tmpdir_t t;
    tmp_make(&t);
    uv_loop_t loop;
    uv_loop_init(&loop);
    audit_t *a = open_log(&loop, &t, POLICY_YAML);

    struct stat st;
    assert_int_equal(stat(t.log, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* alice creates a Service: RequestResponse (rule 8) */
    static const char *const groups[] = {"devs", "system:authenticated"};
    static const char *const ips[] = {"10.0.0.7", "127.0.0.1"};
    static const char *const imp_groups[] = {"ops"};
    audit_attrs_t at = res_attrs("alice", "create", "", "services", NULL, "default", NULL);
    at.groups = groups;
    at.n_groups = 2;
    audit_request_info_t info = {
        .attrs = &at, .request_uri = "/api/v1/namespaces/default/services?fieldManager=kubectl",
        .source_ips = ips, .n_source_ips = 2, .user_agent = "kubectl/v1.29.0",
        .impersonated_username = "carol", .impersonated_groups = imp_groups,
        .n_impersonated_groups = 1,
    };
    assert_int_equal(audit_level_for(a, &at), AUDIT_LEVEL_REQUEST_RESPONSE);
    audit_event_t *ev = audit_event_begin(a, &info);
    assert_non_null(ev);
    char id[40];
    strcpy(id, audit_event_id(ev));
    assert_int_equal(audit_event_level(ev), AUDIT_LEVEL_REQUEST_RESPONSE);
    audit_event_annotate(ev, "authorization.k8s.io/decision", "allow");
    json_t *req = json_loads("{\"kind\":\"Service\",\"metadata\":{\"name\":\"web\"}}", 0, NULL);
    audit_event_set_request_object(ev, req);
    json_decref(req);
    static const char resp[] = "{\"kind\":\"Service\",\"metadata\":{\"name\":\"web\",\"uid\":\"u1\"}}";
    audit_event_end(a, ev, 201, resp, strlen(resp));

    /* bob is denied deleting a deployment: the Status becomes responseStatus */
    at = res_attrs("bob", "delete", "apps", "deployments", NULL, "default", "web");
    info = (audit_request_info_t){.attrs = &at, .request_uri = "/apis/apps/v1/namespaces/default/deployments/web"};
    ev = audit_event_begin(a, &info);
    static const char denied[] =
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
        "\"message\":\"deployments.apps \\\"web\\\" is forbidden\",\"reason\":\"Forbidden\","
        "\"details\":{\"name\":\"web\",\"group\":\"apps\",\"kind\":\"deployments\"},\"code\":403}";
    audit_event_end(a, ev, 403, denied, strlen(denied));

    /* a watch: RequestReceived, ResponseStarted, ResponseComplete; Panic omitted by policy */
    at = res_attrs("bob", "watch", "", "pods", NULL, "prod", NULL);
    info = (audit_request_info_t){.attrs = &at, .request_uri = "/api/v1/namespaces/prod/pods?watch=1"};
    ev = audit_event_begin(a, &info);
    audit_event_response_started(a, ev, 200);
    audit_event_end(a, ev, 200, NULL, 0);
    at = res_attrs("bob", "get", "", "pods", NULL, "default", "p");
    ev = audit_event_begin(a, &info);
    audit_event_panic(a, ev, "boom");

    /* None: nothing at all */
    at = res_attrs("system:kube-proxy", "watch", "", "endpoints", NULL, "default", NULL);
    assert_null(audit_event_begin(a, &info));
    audit_event_end(a, NULL, 200, NULL, 0);

    close_and_run(&loop, a);

    size_t n;
    json_t **l = read_lines(t.log, &n);
    /* create: 2 stages; delete: 2; watch in prod: RequestReceived omitted -> 2; panic: 1 omitted -> RequestReceived only */
    assert_int_equal(n, 7);
    json_t *rr = l[0], *rc = l[1];
    assert_string_equal(S(rr, "kind"), "Event");
    assert_string_equal(S(rr, "apiVersion"), "audit.k8s.io/v1");
    assert_string_equal(S(rr, "level"), "RequestResponse");
    assert_string_equal(S(rr, "stage"), "RequestReceived");
    assert_string_equal(S(rc, "stage"), "ResponseComplete");
    assert_string_equal(S(rr, "auditID"), id);
    assert_string_equal(S(rc, "auditID"), id);
    assert_matches(id, "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
    assert_string_equal(S(rc, "requestURI"), "/api/v1/namespaces/default/services?fieldManager=kubectl");
    assert_string_equal(S(rc, "verb"), "create");
    json_t *user = json_object_get(rc, "user");
    assert_string_equal(S(user, "username"), "alice");
    assert_int_equal(json_array_size(json_object_get(user, "groups")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(user, "groups"), 0)), "devs");
    json_t *imp = json_object_get(rc, "impersonatedUser");
    assert_string_equal(S(imp, "username"), "carol");
    assert_string_equal(json_string_value(json_array_get(json_object_get(imp, "groups"), 0)), "ops");
    assert_string_equal(json_string_value(json_array_get(json_object_get(rc, "sourceIPs"), 0)), "10.0.0.7");
    assert_string_equal(S(rc, "userAgent"), "kubectl/v1.29.0");
    json_t *ref = json_object_get(rc, "objectRef");
    assert_string_equal(S(ref, "resource"), "services");
    assert_string_equal(S(ref, "namespace"), "default");
    assert_string_equal(S(ref, "apiVersion"), "v1");
    assert_null(json_object_get(ref, "name"));
    assert_null(json_object_get(ref, "apiGroup")); /* core group: omitted, as Kubernetes does */
    assert_int_equal(json_integer_value(json_object_get(json_object_get(rc, "responseStatus"), "code")), 201);
    assert_null(json_object_get(rr, "responseStatus"));
    assert_null(json_object_get(rr, "requestObject")); /* not decoded yet at RequestReceived */
    assert_string_equal(S(json_object_get(json_object_get(rc, "requestObject"), "metadata"), "name"), "web");
    assert_string_equal(S(json_object_get(json_object_get(rc, "responseObject"), "metadata"), "uid"), "u1");
    assert_string_equal(S(json_object_get(rc, "annotations"), "authorization.k8s.io/decision"), "allow");
    const char *ts_re = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$";
    assert_matches(S(rc, "requestReceivedTimestamp"), ts_re);
    assert_matches(S(rc, "stageTimestamp"), ts_re);
    assert_string_equal(S(rr, "requestReceivedTimestamp"), S(rc, "requestReceivedTimestamp"));
    assert_true(strcmp(S(rc, "stageTimestamp"), S(rc, "requestReceivedTimestamp")) >= 0);

    /* denied delete */
    json_t *d = l[3];
    assert_string_equal(S(d, "verb"), "delete");
    assert_string_equal(S(json_object_get(d, "user"), "username"), "bob");
    assert_string_equal(S(json_object_get(d, "objectRef"), "name"), "web");
    assert_string_equal(S(json_object_get(d, "objectRef"), "apiGroup"), "apps");
    json_t *rs = json_object_get(d, "responseStatus");
    assert_int_equal(json_integer_value(json_object_get(rs, "code")), 403);
    assert_string_equal(S(rs, "reason"), "Forbidden");
    assert_string_equal(S(rs, "status"), "Failure");
    assert_non_null(strstr(S(rs, "message"), "forbidden"));
    /* rule 5 logs it at RequestResponse: the Status is also the responseObject */
    assert_string_equal(S(d, "level"), "RequestResponse");
    assert_string_equal(S(json_object_get(d, "responseObject"), "kind"), "Status");

    /* watch in prod: Metadata, RequestReceived omitted by rule 6 */
    assert_string_equal(S(l[4], "stage"), "ResponseStarted");
    assert_string_equal(S(l[5], "stage"), "ResponseComplete");
    assert_string_equal(S(l[4], "auditID"), S(l[5], "auditID"));
    assert_null(json_object_get(l[5], "requestObject"));
    assert_null(json_object_get(l[5], "responseObject"));
    /* panic: only its RequestReceived stage made it */
    assert_string_equal(S(l[6], "stage"), "RequestReceived");
    assert_string_equal(S(l[6], "level"), "Metadata");
    free_lines(l, n);

    uv_loop_close(&loop);
    tmp_remove(&t);
}

static int file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    strbuf_t b = {0};
    char chunk[4096];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) strbuf_addn(&b, chunk, k);
    fclose(f);
    int found = b.p && strstr(b.p, needle) != NULL;
    strbuf_free(&b);
    return found;
}

static void test_secrets_never_logged(void **state)
{
    tmpdir_t t;
    tmp_make(&t);
    uv_loop_t loop;
    uv_loop_init(&loop);
    audit_t *a = open_log(&loop, &t, "apiVersion: audit.k8s.io/v1\nkind: Policy\n"
                                     "rules:\n  - level: RequestResponse\n");
    /* "hunter2" base64 */
    static const char secret[] =
        "{\"kind\":\"Secret\",\"metadata\":{\"name\":\"db\"},\"data\":{\"password\":\"aHVudGVyMg==\"}}";
    static const char token[] =
        "{\"kind\":\"TokenRequest\",\"apiVersion\":\"authentication.k8s.io/v1\","
        "\"status\":{\"token\":\"eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2Vu.sig\"}}";
    static const char review[] =
        "{\"kind\":\"TokenReview\",\"spec\":{\"token\":\"eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2Vu.sig\"}}";
    json_t *sj = json_loads(secret, 0, NULL), *rj = json_loads(review, 0, NULL);

    audit_attrs_t at = res_attrs("alice", "create", "", "secrets", NULL, "default", NULL);
    audit_request_info_t info = {.attrs = &at, .request_uri = "/api/v1/namespaces/default/secrets"};
    assert_true(audit_is_sensitive(&at));
    audit_event_t *ev = audit_event_begin(a, &info);
    assert_int_equal(audit_event_level(ev), AUDIT_LEVEL_REQUEST_RESPONSE);
    audit_event_set_request_object(ev, sj);
    audit_event_end(a, ev, 201, secret, strlen(secret));

    at = res_attrs("alice", "create", "", "serviceaccounts", "token", "default", "builder");
    assert_true(audit_is_sensitive(&at));
    ev = audit_event_begin(a, &info);
    audit_event_end(a, ev, 201, token, strlen(token));

    at = res_attrs("alice", "create", "authentication.k8s.io", "tokenreviews", NULL, NULL, NULL);
    assert_true(audit_is_sensitive(&at));
    ev = audit_event_begin(a, &info);
    audit_event_set_request_object(ev, rj);
    audit_event_end(a, ev, 201, review, strlen(review));

    /* a ConfigMap at the same level is logged in full (the policy works) */
    at = res_attrs("alice", "create", "", "configmaps", NULL, "default", NULL);
    assert_false(audit_is_sensitive(&at));
    at.resource = "serviceaccounts"; /* the ServiceAccount itself is not secret */
    assert_false(audit_is_sensitive(&at));
    at.resource = "configmaps";
    ev = audit_event_begin(a, &info);
    static const char cm[] = "{\"kind\":\"ConfigMap\",\"data\":{\"k\":\"plain-visible\"}}";
    audit_event_end(a, ev, 201, cm, strlen(cm));
    json_decref(sj);
    json_decref(rj);
    close_and_run(&loop, a);

    assert_false(file_contains(t.log, "aHVudGVyMg=="));
    assert_false(file_contains(t.log, "c2VjcmV0LXRva2Vu"));
    assert_true(file_contains(t.log, "plain-visible"));
    size_t n;
    json_t **l = read_lines(t.log, &n);
    assert_int_equal(n, 8);
    for (size_t i = 0; i < 6; i++) {
        assert_null(json_object_get(l[i], "requestObject"));
        assert_null(json_object_get(l[i], "responseObject"));
        assert_non_null(json_object_get(json_object_get(l[i], "annotations"),
                                         "audit.skiff.io/payload-omitted"));
    }
    assert_string_equal(S(json_object_get(l[3], "objectRef"), "subresource"), "token");
    assert_non_null(json_object_get(l[7], "responseObject"));
    assert_null(json_object_get(l[7], "annotations"));
    free_lines(l, n);
    uv_loop_close(&loop);
    tmp_remove(&t);
}

static void test_levels_and_managed_fields(void **state)
{
    tmpdir_t t;
    tmp_make(&t);
    uv_loop_t loop;
    uv_loop_init(&loop);
    audit_t *a = open_log(&loop, &t,
                          "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitManagedFields: true\n"
                          "omitStages: [RequestReceived]\nrules:\n"
                          "  - level: Metadata\n    verbs: [get]\n"
                          "  - level: Request\n    verbs: [update]\n"
                          "  - level: RequestResponse\n    verbs: [patch]\n"
                          "  - level: RequestResponse\n    verbs: [create]\n    omitManagedFields: false\n");
    static const char obj[] =
        "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\",\"managedFields\":[{\"manager\":\"kubectl\"}]}}";
    json_t *o = json_loads(obj, 0, NULL);
    const char *verbs[] = {"get", "update", "patch", "create"};
    for (size_t i = 0; i < 4; i++) {
        audit_attrs_t at = res_attrs("u", verbs[i], "", "configmaps", NULL, "default", "c");
        audit_request_info_t info = {.attrs = &at, .request_uri = "/api/v1/namespaces/default/configmaps/c"};
        audit_event_t *ev = audit_event_begin(a, &info);
        audit_event_set_request_object(ev, o);
        audit_event_end(a, ev, 200, obj, strlen(obj));
    }
    json_decref(o);
    close_and_run(&loop, a);
    size_t n;
    json_t **l = read_lines(t.log, &n);
    assert_int_equal(n, 4);
    /* Metadata: neither object */
    assert_string_equal(S(l[0], "level"), "Metadata");
    assert_null(json_object_get(l[0], "requestObject"));
    assert_null(json_object_get(l[0], "responseObject"));
    /* Request: the request object only, managedFields dropped */
    assert_string_equal(S(l[1], "level"), "Request");
    json_t *ro = json_object_get(l[1], "requestObject");
    assert_non_null(ro);
    assert_null(json_object_get(json_object_get(ro, "metadata"), "managedFields"));
    assert_null(json_object_get(l[1], "responseObject"));
    /* RequestResponse: both */
    assert_non_null(json_object_get(l[2], "requestObject"));
    json_t *po = json_object_get(l[2], "responseObject");
    assert_string_equal(S(json_object_get(po, "metadata"), "name"), "c");
    assert_null(json_object_get(json_object_get(po, "metadata"), "managedFields"));
    /* the rule's omitManagedFields: false beats the policy's */
    assert_non_null(json_object_get(json_object_get(json_object_get(l[3], "responseObject"),
                                                    "metadata"), "managedFields"));
    free_lines(l, n);
    uv_loop_close(&loop);
    tmp_remove(&t);
}

static void emit_numbered(audit_t *a, size_t i)
{
    char uri[64];
    snprintf(uri, sizeof uri, "/api/v1/namespaces/default/pods/p%zu", i);
    audit_attrs_t at = res_attrs("bob", "get", "", "pods", NULL, "default", uri + 30);
    audit_request_info_t info = {.attrs = &at, .request_uri = uri};
    audit_event_t *ev = audit_event_begin(a, &info);
    audit_event_end(a, ev, 200, NULL, 0);
}

static long uri_number(json_t *line)
{
    const char *u = S(line, "requestURI");
    const char *p = strrchr(u, 'p');
    return p ? strtol(p + 1, NULL, 10) : -1;
}

static void test_lines_in_order_appended(void **state)
{
    tmpdir_t t;
    tmp_make(&t);
    /* An existing, too-open log is appended to and tightened to 0600. */
    FILE *f = fopen(t.log, "w");
    fputs("{\"old\":true}\n", f);
    fclose(f);
    chmod(t.log, 0644);
    uv_loop_t loop;
    uv_loop_init(&loop);
    audit_t *a = open_log(&loop, &t, NULL);
    struct stat st;
    assert_int_equal(stat(t.log, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* Interleave event creation with loop turns so writes overlap new lines. */
    for (size_t i = 0; i < 3000; i++) {
        emit_numbered(a, i);
        if (i % 100 == 0) uv_run(&loop, UV_RUN_NOWAIT);
    }
    audit_stats_t s;
    audit_get_stats(a, &s);
    assert_int_equal(s.events, 3000);
    assert_int_equal(s.dropped, 0);
    close_and_run(&loop, a);
    size_t n;
    json_t **l = read_lines(t.log, &n);
    assert_int_equal(n, 3001);
    assert_true(json_is_true(json_object_get(l[0], "old")));
    for (size_t i = 1; i < n; i++) {
        /* the default policy: Metadata, one line per request */
        assert_string_equal(S(l[i], "stage"), "ResponseComplete");
        assert_int_equal(uri_number(l[i]), (long)(i - 1));
    }
    free_lines(l, n);
    uv_loop_close(&loop);
    tmp_remove(&t);
}

/* Reads the FIFO to the end into a buffer. */
typedef struct reader {
    int fd;
    strbuf_t got;
} reader_t;

static void *read_all(void *arg)
{
    reader_t *r = arg;
    char chunk[65536];
    ssize_t k;
    while ((k = read(r->fd, chunk, sizeof chunk)) != 0) {
        if (k < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                usleep(1000);
                continue;
            }
            break;
        }
        strbuf_addn(&r->got, chunk, (size_t)k);
    }
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_stalled_disk_drops_never_blocks(void **state)
{
    tmpdir_t t;
    tmp_make(&t);
    char fifo[160];
    snprintf(fifo, sizeof fifo, "%s/fifo", t.dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    /* A reader that does not read yet: the "disk" stalls once the pipe is full. */
    reader_t r = {.fd = open(fifo, O_RDONLY | O_NONBLOCK)};
    assert_true(r.fd >= 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    audit_t *a = NULL;
    char err[256];
    audit_policy_t *p = NULL;
    assert_int_equal(audit_policy_default_new(&p), 0);
    assert_int_equal(audit_open_with_policy(&loop, fifo, p, &a, err, sizeof err), 0);
    audit_set_buffer_limit(a, 256 * 1024);

    const size_t total = 20000;
    double t0 = now_s();
    for (size_t i = 0; i < total; i++) {
        emit_numbered(a, i);
        if (i % 500 == 0) uv_run(&loop, UV_RUN_NOWAIT);
    }
    double took = now_s() - t0;
    /* ~20000 small events: far below a second even with sanitizers; a
     * write that blocked would never return (nobody reads the pipe), so
     * the bound only has to survive a busy machine */
    if (took > 30.0) fail_msg("burst took %.2f s", took);
    audit_stats_t s;
    audit_get_stats(a, &s);
    assert_true(s.dropped > 0);
    assert_int_equal(s.events + s.dropped, total);
    assert_true(s.buffered <= 256 * 1024);

    /* Now the disk recovers: everything accepted arrives, in order. */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, read_all, &r), 0);
    close_and_run(&loop, a);
    pthread_join(th, NULL);
    close(r.fd);
    assert_false(r.got.failed);
    size_t lines = 0;
    long last = -1;
    for (char *line = r.got.p, *nl; line && (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        json_t *j = json_loads(line, 0, NULL);
        if (!j) fail_msg("line %zu is not JSON: %.80s", lines, line);
        long num = uri_number(j);
        assert_true(num > last);
        last = num;
        json_decref(j);
        lines++;
    }
    assert_int_equal(lines, s.events);
    strbuf_free(&r.got);
    uv_loop_close(&loop);
    tmp_remove(&t);
}

static void test_open_errors(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    audit_t *a = NULL;
    char err[256] = "";
    assert_int_equal(audit_open(&loop, "/nonexistent-dir/audit.log", NULL, &a, err, sizeof err),
                     SKIFF_EIO);
    assert_null(a);
    assert_non_null(strstr(err, "/nonexistent-dir/audit.log"));
    tmpdir_t t;
    tmp_make(&t);
    char bad[160];
    snprintf(bad, sizeof bad, "%s/policy.yaml", t.dir);
    FILE *f = fopen(bad, "w");
    fputs("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Loud\n", f);
    fclose(f);
    assert_int_equal(audit_open(&loop, t.log, bad, &a, err, sizeof err), SKIFF_EINVAL);
    assert_non_null(strstr(err, "rules[0].level"));
    assert_non_null(strstr(err, bad));
    assert_int_equal(access(t.log, F_OK), -1); /* nothing created on a bad policy */
    uv_loop_close(&loop);
    tmp_remove(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_yaml_first_match),
        cmocka_unit_test(test_policy_json_same_rules),
        cmocka_unit_test(test_policy_empty_and_default),
        cmocka_unit_test(test_policy_errors),
        cmocka_unit_test(test_event_fields_and_stages),
        cmocka_unit_test(test_secrets_never_logged),
        cmocka_unit_test(test_levels_and_managed_fields),
        cmocka_unit_test(test_lines_in_order_appended),
        cmocka_unit_test(test_stalled_disk_drops_never_blocks),
        cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
