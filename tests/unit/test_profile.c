/* tests/unit/test_profile.c - cluster profiles without a server: JSON and
 * Lua profiles filling a settings struct through an options table, the
 * errors (file, line, setting, valid keys, expected type), the Lua sandbox
 * (no io, no loading, bounded time), precedence of the command line,
 * plugin settings merged, built-in profiles loading, address ranges, and
 * the %{NAME}% substitution of addon files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "profile/addons.h"
#include "profile/profile.h"

typedef struct settings {
    const char *profile;
    int print_profile;
    const char *controllers;
    const char *scheduler;
    const char *plugin_settings;
    const char *store;
    int max_inflight;
    int tls;
    const char *cluster_cidr;
    const char *admission_settings;
} settings_t;

static const option_t opts[] = {
    {"profile", OPT_STRING, "NAME|FILE", NULL, "", offsetof(settings_t, profile)},
    {"print-profile", OPT_FLAG, NULL, NULL, "", offsetof(settings_t, print_profile)},
    {"controllers", OPT_STRING, "LIST", "all", "", offsetof(settings_t, controllers)},
    {"scheduler", OPT_STRING, "NAME", NULL, "", offsetof(settings_t, scheduler)},
    {"plugin-settings", OPT_STRING, "P.S=V", NULL, "", offsetof(settings_t, plugin_settings)},
    {"store", OPT_STRING, "SPEC", NULL, "", offsetof(settings_t, store)},
    {"max-requests-inflight", OPT_INT, "N", "400", "", offsetof(settings_t, max_inflight)},
    {"tls", OPT_FLAG, NULL, NULL, "", offsetof(settings_t, tls)},
    {"cluster-cidr", OPT_STRING, "CIDR", NULL, "", offsetof(settings_t, cluster_cidr)},
    {"admission-plugin-settings", OPT_STRING, "P.S=V", NULL, "",
     offsetof(settings_t, admission_settings)},
};
#define NOPTS (sizeof opts / sizeof *opts)

static char err[2048];

/* Loads text as origin and applies it; returns the profile or NULL (err). */
static profile_t *apply(const char *origin, const char *text, int lua, settings_t *s)
{
    memset(s, 0, sizeof *s);
    s->controllers = "all";
    s->max_inflight = 400;
    err[0] = '\0';
    profile_t *p = profile_load_text(origin, text, strlen(text), lua, err, sizeof err);
    if (!p) return NULL;
    if (profile_apply(p, opts, NOPTS, s, err, sizeof err) != 0) {
        profile_free(p);
        return NULL;
    }
    return p;
}

static void test_json_sections(void **state)
{
    settings_t s;
    profile_t *p = apply("/x/p.json",
                         "{\"name\": \"mine\", \"controllers\": [\"deployment\", \"replicaset\"],\n"
                         " \"scheduler\": {\"plugin\": \"sched\", \"settings\": {\n"
                         "   \"scores\": {\"A\": 1, \"B\": 2}, \"filters\": [\"-X\", \"-Y\"],\n"
                         "   \"events\": false, \"n\": 5}},\n"
                         " \"plugins\": {\"settings\": {\"other\": {\"k\": \"v\"}}},\n"
                         " \"store\": \"sqlite:/tmp/s.db\",\n"
                         " \"server\": {\"max-requests-inflight\": 9, \"tls\": true},\n"
                         " \"addons\": [\"a\", \"/abs/b.yaml\"]}",
                         0, &s);
    assert_non_null(p);
    assert_string_equal(profile_name(p), "mine");
    assert_string_equal(s.controllers, "deployment,replicaset");
    assert_string_equal(s.scheduler, "sched");
    assert_string_equal(s.plugin_settings,
                        "sched.scores=A:1,B:2;sched.filters=-X,-Y;sched.events=false;sched.n=5;"
                        "other.k=v");
    assert_string_equal(s.store, "sqlite:/tmp/s.db");
    assert_int_equal(s.max_inflight, 9);
    assert_int_equal(s.tls, 1);
    json_t *a = profile_addons(p);
    assert_int_equal(json_array_size(a), 2);
    /* relative to the profile's folder */
    assert_string_equal(json_string_value(json_array_get(a, 0)), "/x/a");
    assert_string_equal(json_string_value(json_array_get(a, 1)), "/abs/b.yaml");
    profile_free(p);
}

static void test_lua_profile(void **state)
{
    settings_t s;
    profile_t *p = apply("/x/p.lua",
                         "local n = 0\n"
                         "for i = 1, 4 do n = n + i end\n"
                         "return {\n"
                         "  controllers = {'job', 'cronjob'},\n"
                         "  server = { ['max-requests-inflight'] = n * 10 },\n"
                         "  network = { ['cluster-cidr'] = {'10.42.0.0/16', 'fd00::/56'} },\n"
                         "}\n",
                         1, &s);
    assert_non_null(p);
    assert_string_equal(s.controllers, "job,cronjob");
    assert_int_equal(s.max_inflight, 100);
    assert_string_equal(s.cluster_cidr, "10.42.0.0/16,fd00::/56");
    profile_free(p);
}

static void test_errors_name_file_line_setting(void **state)
{
    settings_t s;
    /* unknown top-level key: the line and the valid keys */
    assert_null(apply("/x/p.json", "{\n  \"controllers\": \"all\",\n  \"schedular\": \"none\"\n}",
                      0, &s));
    assert_non_null(strstr(err, "/x/p.json:3: schedular: unknown setting"));
    assert_non_null(strstr(err, "scheduler"));
    /* wrong type: the expected one */
    assert_null(apply("/x/p.json",
                      "{\n\"scheduler\": {\n  \"plugin\": \"s\"},\n\"server\": {\n"
                      "  \"max-requests-inflight\": \"lots\"}}",
                      0, &s));
    assert_non_null(strstr(err, "/x/p.json:5: server.max-requests-inflight: expected a whole "
                                "number"));
    /* unknown server option lists the valid ones */
    assert_null(apply("/x/p.lua", "return {\n server = {\n  bogus = 1,\n }\n}", 1, &s));
    assert_non_null(strstr(err, "/x/p.lua:3: server.bogus: unknown server option; valid: "));
    assert_non_null(strstr(err, "max-requests-inflight"));
    /* a flag wants a boolean */
    assert_null(apply("/x/p.json", "{\"server\": {\"tls\": 1}}", 0, &s));
    assert_non_null(strstr(err, "server.tls: expected true or false, got an integer"));
    /* JSON syntax: jansson's line and column */
    assert_null(apply("/x/p.json", "{\n \"a\": 1,\n \"b\" 2\n}", 0, &s));
    assert_non_null(strstr(err, "/x/p.json:3:"));
    /* Lua error: the chunk's line */
    assert_null(apply("/x/p.lua", "local t = {}\nreturn { controllers = t.a.b }", 1, &s));
    assert_non_null(strstr(err, "/x/p.lua:2:"));
    /* a section this build has no option for */
    assert_null(apply("/x/p.json", "{\"admission\": {\"enable\": [\"X\"]}}", 0, &s));
    assert_non_null(strstr(err, "admission.enable: this build of skiff server has no "
                                "--enable-admission-plugins option"));
    /* reserved kinds of plugins */
    assert_null(apply("/x/p.json", "{\"runtime\": \"oci\"}", 0, &s));
    assert_non_null(strstr(err, "runtime: runtime plugins come with the node agent"));
    /* one option set twice */
    assert_null(apply("/x/p.json", "{\"controllers\": \"all\", \"server\": {\"controllers\": "
                                   "\"none\"}}",
                      0, &s));
    assert_non_null(strstr(err, "already set by controllers"));
    /* the command line's own options */
    assert_null(apply("/x/p.json", "{\"server\": {\"profile\": \"edge\"}}", 0, &s));
    assert_non_null(strstr(err, "is a command-line option"));
}

static void test_lua_sandbox(void **state)
{
    settings_t s;
    assert_null(apply("/x/p.lua", "io.open('/etc/passwd')\nreturn {}", 1, &s));
    assert_non_null(strstr(err, "global 'io'"));
    assert_null(apply("/x/p.lua", "os.execute('true')\nreturn {}", 1, &s));
    assert_non_null(strstr(err, "execute"));
    assert_null(apply("/x/p.lua", "return loadfile('/etc/passwd')", 1, &s));
    assert_null(apply("/x/p.lua", "return require('io')", 1, &s));
    assert_null(apply("/x/p.lua", "while true do end", 1, &s));
    assert_non_null(strstr(err, "runs too long"));
    assert_null(apply("/x/p.lua", "local t = {} for i = 1, 1e8 do t[i] = i end return t", 1,
                      &s));
    assert_null(apply("/x/p.lua", "return 42", 1, &s));
    assert_non_null(strstr(err, "must return a table"));
    assert_null(apply("/x/p.lua", "return { controllers = string.len }", 1, &s));
    assert_non_null(strstr(err, "controllers: a function cannot be a setting"));
    /* what is left works */
    profile_t *p = apply("/x/p.lua",
                         "return { description = string.format('%d', math.max(1, 2)) .. "
                         "(os.getenv('NO_SUCH_VARIABLE_X') or '') }",
                         1, &s);
    assert_non_null(p);
    profile_free(p);
}

static void test_command_line_wins(void **state)
{
    char path[] = "/tmp/test_profile_XXXXXX.json";
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    const char *text = "{\"controllers\": \"none\", \"server\": {\"max-requests-inflight\": 7},"
                       " \"scheduler\": {\"settings\": {\"a\": 1, \"b\": 2}},"
                       " \"admission\": {\"settings\": {\"quota\": {\"max\": 3}}}}";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char *argv[] = {"--profile", path, "--max-requests-inflight", "11", "--plugin-settings",
                    "scheduler-default.b=3", "--admission-plugin-settings", "quota.max=4"};
    settings_t s = {.controllers = "all", .max_inflight = 400};
    profile_t *p = NULL;
    assert_int_equal(profile_parse_args("t", "", opts, NOPTS, 8, argv, &s, sizeof s, &p), 0);
    assert_non_null(p);
    assert_string_equal(s.controllers, "none");  /* the profile over the default */
    assert_int_equal(s.max_inflight, 11);        /* the command line over the profile */
    /* accumulated: the command line's entry last, so it wins */
    assert_string_equal(s.plugin_settings,
                        "scheduler-default.a=1;scheduler-default.b=2;scheduler-default.b=3");
    assert_string_equal(s.admission_settings, "quota.max=3;quota.max=4");
    json_t *r = profile_resolved(p, opts, NOPTS, &s);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "server"),
                                                        "max-requests-inflight")),
                     11);
    assert_null(json_object_get(json_object_get(r, "server"), "profile"));
    json_decref(r);
    profile_free(p);
    unlink(path);
}

static void test_builtin_profiles(void **state)
{
    const char *names[] = {"single-node", "edge", "bench"};
    for (size_t i = 0; i < 3; i++) {
        settings_t s = {.controllers = "all", .max_inflight = 400};
        profile_t *p = profile_load(names[i], err, sizeof err);
        assert_non_null(p);
        assert_string_equal(profile_name(p), names[i]);
        /* the real server table has every option these use; here the
         * ones of the test table must at least not be refused by type */
        json_decref(profile_resolved(p, opts, NOPTS, &s));
        profile_free(p);
    }
    assert_null(profile_load("ha", err, sizeof err));
    assert_non_null(strstr(err, "storage-etcd"));
    assert_null(profile_load("nonesuch", err, sizeof err));
    assert_non_null(strstr(err, "single-node, edge, bench"));
    /* extends: the base's values under the file's */
    const char *ext = "{\"extends\": \"edge\", \"store\": \"sqlite\", \"controllers\": \"none\"}";
    profile_t *p = profile_load_text("/x/p.json", ext, strlen(ext), 0, err, sizeof err);
    assert_non_null(p);
    json_t *a = profile_addons(p);
    assert_string_equal(json_string_value(json_array_get(a, 0)),
                        "builtin:addons/cluster-info.yaml");
    profile_free(p);
}

static void test_ranges(void **state)
{
    assert_int_equal(profile_check_ranges("x", "10.43.0.0/16", err, sizeof err), 0);
    assert_int_equal(profile_check_ranges("x", "10.43.0.0/16,fd00:43::/112", err, sizeof err), 0);
    assert_int_equal(profile_check_ranges("x", "10.43.0.0/16,10.44.0.0/16", err, sizeof err), -1);
    assert_non_null(strstr(err, "different families"));
    assert_int_equal(profile_check_ranges("x", "10.43.0.1/16", err, sizeof err), -1);
    assert_non_null(strstr(err, "host bits"));
    assert_int_equal(profile_check_ranges("x", "10.43.0.0", err, sizeof err), -1);
    assert_int_equal(profile_check_ranges("x", "10.43.0.0/33", err, sizeof err), -1);
    assert_int_equal(profile_check_ranges("x", "a,b,c", err, sizeof err), -1);
}

static void test_substitute(void **state)
{
    json_t *vars = json_pack("{s:s, s:s}", "PROFILE", "edge", "CLUSTER_CIDR", "10.42.0.0/16");
    char *t = addons_substitute("p=%{PROFILE}% c=%{CLUSTER_CIDR}% u=%{UNKNOWN}% %{", vars);
    assert_string_equal(t, "p=edge c=10.42.0.0/16 u=%{UNKNOWN}% %{");
    free(t);
    json_decref(vars);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_sections),
        cmocka_unit_test(test_lua_profile),
        cmocka_unit_test(test_errors_name_file_line_setting),
        cmocka_unit_test(test_lua_sandbox),
        cmocka_unit_test(test_command_line_wins),
        cmocka_unit_test(test_builtin_profiles),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_substitute),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
