/* tests/unit/test_lua.c - the Lua host without an API server: jansson <->
 * Lua conversion (arrays and objects, empty ones, integers and reals,
 * null), scripts that exceed their memory or time limit being stopped and
 * reported (never the process), load errors naming the file, settings,
 * and modules added to the skiff table through lua_host_register_module. */
#define _GNU_SOURCE
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
#include <lauxlib.h>
#include <lualib.h>
#include <uv.h>

#include <skiff/scheduler.h>

#include "lua/lua_host.h"
#include "lua/lua_int.h"
#include "plugin/loader.h"

static uv_loop_t loop;
static char dir[] = "/tmp/skiff-test-lua-XXXXXX";

static int group_setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir)) return -1;
    return uv_loop_init(&loop);
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return -1;
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop);
}

static const char *script(const char *name, const char *text)
{
    static char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void run_ms(int ms)
{
    uint64_t end = uv_now(&loop) + (uint64_t)ms;
    while (uv_now(&loop) < end) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
        uv_update_time(&loop);
    }
}

/* ---- conversion ---------------------------------------------------------- */

static void test_json_round_trip(void **state)
{
    (void)state;
    lua_State *L = luaL_newstate();
    const char *doc = "{\"a\":[],\"b\":{},\"c\":9007199254740993,\"d\":0.5,\"e\":null,"
                      "\"f\":[1,\"x\",{\"y\":[[]]}],\"g\":false,\"h\":3.0}";
    json_t *in = json_loads(doc, 0, NULL);
    assert_non_null(in);
    lua_json_push(L, in);
    /* integers keep their full 64-bit value in Lua */
    lua_getfield(L, -1, "c");
    assert_true(lua_isinteger(L, -1));
    assert_true(lua_tointeger(L, -1) == 9007199254740993LL);
    lua_pop(L, 1);
    char err[128];
    json_t *out = lua_json_to(L, -1, err, sizeof err);
    assert_non_null(out);
    assert_true(json_equal(in, out));
    assert_true(json_is_array(json_object_get(out, "a")));
    assert_true(json_is_object(json_object_get(out, "b")));
    assert_true(json_is_real(json_object_get(out, "h")));
    assert_true(json_is_null(json_object_get(out, "e")));
    json_decref(in);
    json_decref(out);
    lua_settop(L, 0);

    /* plain Lua tables */
    assert_int_equal(luaL_dostring(L, "return {1, 2, 3}, {}, {a = 1}, {1, x = 2}, 2^53, 0/0"), 0);
    json_t *seq = lua_json_to(L, 1, err, sizeof err);
    json_t *empty = lua_json_to(L, 2, err, sizeof err);
    json_t *obj = lua_json_to(L, 3, err, sizeof err);
    assert_true(json_is_array(seq) && json_array_size(seq) == 3);
    assert_true(json_is_integer(json_array_get(seq, 0)));
    assert_true(json_is_object(empty));
    assert_true(json_is_object(obj));
    assert_null(lua_json_to(L, 4, err, sizeof err));
    assert_non_null(strstr(err, "not strings"));
    json_t *real = lua_json_to(L, 5, err, sizeof err);
    assert_true(json_is_real(real));
    assert_null(lua_json_to(L, 6, err, sizeof err));
    assert_non_null(strstr(err, "not finite"));
    json_decref(seq);
    json_decref(empty);
    json_decref(obj);
    json_decref(real);
    lua_close(L);
}

static void test_json_contains(void **state)
{
    (void)state;
    json_t *have = json_loads("{\"spec\":{\"replicas\":2,\"tags\":[\"a\",\"b\"],\"x\":1}}", 0, NULL);
    json_t *same = json_loads("{\"spec\":{\"replicas\":2.0,\"tags\":[\"a\",\"b\"]}}", 0, NULL);
    json_t *diff = json_loads("{\"spec\":{\"replicas\":3}}", 0, NULL);
    json_t *shorter = json_loads("{\"spec\":{\"tags\":[\"a\"]}}", 0, NULL);
    json_t *absent = json_loads("{\"spec\":{\"gone\":null}}", 0, NULL);
    assert_true(lua_json_contains(same, have));
    assert_false(lua_json_contains(diff, have));
    assert_false(lua_json_contains(shorter, have));
    assert_true(lua_json_contains(absent, have));
    json_decref(have);
    json_decref(same);
    json_decref(diff);
    json_decref(shorter);
    json_decref(absent);
}

/* ---- loading, limits ------------------------------------------------------- */

static loaded_plugin_t *load(const char *path, char *err, size_t len)
{
    return plugin_load(path, &loop, dir, err, len);
}

static void test_load_errors_name_the_file(void **state)
{
    (void)state;
    char err[1024];
    const char *p = script("syntax.lua", "return skiff.plugin{ name = \"x\",\n kind = }\n");
    assert_null(load(p, err, sizeof err));
    assert_non_null(strstr(err, "syntax.lua:2:"));
    p = script("nokind.lua", "return skiff.plugin{ name = \"x\", kind = \"storage\" }\n");
    assert_null(load(p, err, sizeof err));
    assert_non_null(strstr(err, "\"controller\", \"scheduler\" or \"admission\""));
    p = script("noreturn.lua", "local x = 1\n");
    assert_null(load(p, err, sizeof err));
    assert_non_null(strstr(err, "return skiff.plugin{...}"));
    p = script("badsetting.lua", "return skiff.plugin{ name = \"x\", kind = \"controller\", "
                                 "settings = {{name = \"n\", type = \"float\"}} }\n");
    assert_null(load(p, err, sizeof err));
    assert_non_null(strstr(err, "use string, int, bool or duration"));
    p = script("runaway-load.lua", "while true do end\n");
    assert_null(load(p, err, sizeof err));
    assert_non_null(strstr(err, "time limit of 1s exceeded"));
    assert_null(load("/nonexistent/x.lua", err, sizeof err));
}

static void test_settings(void **state)
{
    (void)state;
    char err[1024];
    const char *p = script("settings.lua",
                           "seen = nil\n"
                           "return skiff.plugin{ name = \"set\", kind = \"controller\",\n"
                           "  settings = { {name = \"replicas\", type = \"int\", default = 2},\n"
                           "               {name = \"on\", type = \"bool\", default = true},\n"
                           "               {name = \"every\", type = \"duration\", default = \"1500ms\"} },\n"
                           "  start = function(ctx)\n"
                           "    local s = ctx.settings\n"
                           "    assert(s.replicas == 5 and math.type(s.replicas) == 'integer', 'replicas')\n"
                           "    assert(s.on == true and s.every == 1.5, 'typed')\n"
                           "    assert(skiff.setting('replicas') == '5')\n"
                           "    assert(s['memory-limit'] == 64)\n"
                           "  end }\n");
    loaded_plugin_t *lp = load(p, err, sizeof err);
    assert_non_null(lp);
    assert_string_equal(lp->name, "set");
    assert_int_equal(lp->desc->kind, SKIFF_PLUGIN_CONTROLLER);
    assert_int_not_equal(plugin_set_setting(lp, "colour", "x", err, sizeof err), 0);
    assert_non_null(strstr(err, "replicas, on, every, memory-limit, time-limit"));
    assert_int_equal(plugin_set_setting(lp, "replicas", "5", err, sizeof err), 0);
    assert_int_equal(plugin_start(lp, err, sizeof err), 0);
    plugin_unload(lp);
}

static void test_memory_limit_stops_the_plugin(void **state)
{
    (void)state;
    char err[1024];
    const char *p = script("hog.lua",
                           "return skiff.plugin{ name = \"hog\", kind = \"controller\",\n"
                           "  start = function()\n"
                           "    skiff.timer(0, function()\n"
                           "      local t = {}\n"
                           "      for i = 1, 1e9 do t[i] = ('x'):rep(100) .. i end\n"
                           "    end)\n"
                           "  end }\n");
    loaded_plugin_t *lp = load(p, err, sizeof err);
    assert_non_null(lp);
    assert_int_equal(plugin_set_setting(lp, "memory-limit", "8", err, sizeof err), 0);
    assert_int_equal(plugin_start(lp, err, sizeof err), 0);
    lua_plugin_t *h = lp->handle;
    for (int i = 0; i < 300 && !lua_plugin_failure(h); i++) run_ms(10);
    assert_non_null(lua_plugin_failure(h));
    assert_non_null(strstr(lua_plugin_failure(h), "memory limit of 8 MiB exceeded in timer"));
    assert_int_equal(lp->state, PLUGIN_FAILED);
    plugin_unload(lp);
}

static void test_time_limit_stops_the_plugin(void **state)
{
    (void)state;
    char err[1024];
    /* pcall cannot swallow the limit */
    const char *p = script("spin.lua",
                           "return skiff.plugin{ name = \"spin\", kind = \"controller\",\n"
                           "  start = function()\n"
                           "    while true do pcall(function() while true do end end) end\n"
                           "  end }\n");
    loaded_plugin_t *lp = load(p, err, sizeof err);
    assert_non_null(lp);
    assert_int_equal(plugin_set_setting(lp, "time-limit", "100ms", err, sizeof err), 0);
    uint64_t t0 = uv_hrtime();
    assert_int_not_equal(plugin_start(lp, err, sizeof err), 0);
    assert_true(uv_hrtime() - t0 < 3000000000ull);
    assert_int_equal(lp->state, PLUGIN_FAILED);
    assert_non_null(strstr(lua_plugin_failure(lp->handle), "time limit of 100ms per callback exceeded in start"));
    run_ms(20);
    plugin_unload(lp);

    /* a bad limit value is refused at start */
    lp = load(p, err, sizeof err);
    assert_int_equal(plugin_set_setting(lp, "time-limit", "soon", err, sizeof err), 0);
    assert_int_not_equal(plugin_start(lp, err, sizeof err), 0);
    plugin_unload(lp);
}

static void test_error_in_callback_keeps_plugin(void **state)
{
    (void)state;
    char err[1024];
    const char *p = script("oops.lua",
                           "n = 0\n"
                           "return skiff.plugin{ name = \"oops\", kind = \"controller\",\n"
                           "  start = function()\n"
                           "    skiff.every(0.01, function() n = n + 1; error('oops ' .. n) end)\n"
                           "  end }\n");
    loaded_plugin_t *lp = load(p, err, sizeof err);
    assert_non_null(lp);
    assert_int_equal(plugin_start(lp, err, sizeof err), 0);
    run_ms(100);
    assert_null(lua_plugin_failure(lp->handle));
    assert_int_equal(lp->state, PLUGIN_STARTED);
    plugin_stop(lp);
    run_ms(20);
    plugin_unload(lp);
}

static int calls;
static int echo_twice(lua_State *L)
{
    calls++;
    lua_pushinteger(L, 2 * luaL_checkinteger(L, 1));
    return 1;
}
static int open_echo(lua_State *L)
{
    lua_newtable(L);
    lua_pushcfunction(L, echo_twice);
    lua_setfield(L, -2, "twice");
    return 1;
}

static void test_register_module(void **state)
{
    (void)state;
    assert_int_equal(lua_host_register_module("echo", open_echo), 0);
    assert_int_equal(lua_host_register_module("echo", open_echo), SKIFF_EEXIST);
    char err[1024];
    const char *p = script("echo.lua",
                           "assert(skiff.echo.twice(21) == 42)\n"
                           "return skiff.plugin{ name = \"echo\", kind = \"controller\",\n"
                           "  start = function() skiff.timer(0, function() skiff.echo.twice(1) end) end }\n");
    calls = 0;
    loaded_plugin_t *lp = load(p, err, sizeof err);
    assert_non_null(lp);
    assert_int_equal(plugin_start(lp, err, sizeof err), 0);
    run_ms(50);
    assert_int_equal(calls, 2);
    plugin_unload(lp);
    run_ms(10);
}

/* ---- scheduler steps ---------------------------------------------------------- */

static void test_scheduler_steps(void **state)
{
    (void)state;
    char err[1024];
    const char *p = script("zones.lua",
                           "return skiff.plugin{ name = \"zones\", kind = \"scheduler\", steps = {\n"
                           "  { name = \"SameZone\",\n"
                           "    filter = function(pod, node)\n"
                           "      if node.labels.zone == pod.labels.zone then return true end\n"
                           "      return false, \"node(s) in another zone\" end,\n"
                           "    score = function(pod, node)\n"
                           "      if node.name == 'spin' then while true do end end\n"
                           "      return node.allocatable.cpu // 1000 * 10 + #node.name end },\n"
                           "  { name = \"Broken\", filter = function() error('no') end } } }\n");
    loaded_plugin_t *lp = load(p, err, sizeof err);
    assert_non_null(lp);
    assert_int_equal(lp->desc->kind, SKIFF_PLUGIN_SCHEDULER);
    assert_int_equal(plugin_set_setting(lp, "time-limit", "100ms", err, sizeof err), 0);
    assert_int_equal(plugin_start(lp, err, sizeof err), 0);
    const skiff_sched_step_table_t *t = lp->desc->vtable;
    assert_non_null(t);
    assert_int_equal(t->abi_version, SKIFF_SCHED_STEP_ABI);
    assert_int_equal(t->n_steps, 2);
    assert_string_equal(t->steps[0].name, "SameZone");

    json_t *podobj = json_pack("{s:{s:s, s:s}}", "metadata", "name", "p", "namespace", "default");
    json_t *plabels = json_pack("{s:s}", "zone", "a");
    json_t *la = json_pack("{s:s}", "zone", "a"), *lb = json_pack("{s:s}", "zone", "b");
    skiff_sched_pod_t pod = {.obj = podobj, .ns = "default", .name = "p", .uid = "u", .labels = plabels};
    skiff_sched_node_t n1 = {.name = "n1", .labels = la, .allocatable = {.cpu = 4000}, .generation = 1};
    skiff_sched_node_t n2 = {.name = "n2", .labels = lb, .allocatable = {.cpu = 2000}, .generation = 1};
    skiff_sched_node_t spin = {.name = "spin", .labels = la, .generation = 1};
    skiff_sched_cycle_t cy = {.pod = &pod};
    const skiff_sched_step_t *st = &t->steps[0];
    void *cs = NULL;
    skiff_sched_reasons_t why = {0};
    assert_int_equal(st->pre_filter(st->data, &cy, &cs, &why), SKIFF_SCHED_OK);
    assert_int_equal(st->filter(st->data, &cy, cs, &n1, &why), SKIFF_SCHED_OK);
    assert_int_equal(st->filter(st->data, &cy, cs, &n2, &why), SKIFF_SCHED_UNRESOLVABLE);
    assert_int_equal(why.n, 1);
    assert_string_equal(why.text[0], "node(s) in another zone");
    assert_int_equal(st->pre_score(st->data, &cy, &cs), 0);
    assert_int_equal(st->score(st->data, &cy, cs, &n1), 42);
    assert_int_equal(st->score(st->data, &cy, cs, &n1), 42); /* the cached view */
    st->free_state(cs);

    /* an error rejects the node with a reason naming the step */
    const skiff_sched_step_t *br = &t->steps[1];
    cs = NULL;
    memset(&why, 0, sizeof why);
    br->pre_filter(br->data, &cy, &cs, &why);
    assert_int_equal(br->filter(br->data, &cy, cs, &n1, &why), SKIFF_SCHED_UNRESOLVABLE);
    assert_string_equal(why.text[0], "Broken failed");
    br->free_state(cs);

    /* a runaway score stops the plugin; its steps then let nodes pass */
    cs = NULL;
    st->pre_score(st->data, &cy, &cs);
    assert_int_equal(st->score(st->data, &cy, cs, &spin), 0);
    st->free_state(cs);
    assert_non_null(strstr(lua_plugin_failure(lp->handle), "exceeded in the score of step SameZone"));
    assert_int_equal(lp->state, PLUGIN_FAILED);
    cs = NULL;
    assert_int_equal(st->pre_filter(st->data, &cy, &cs, &why), SKIFF_SCHED_SKIP);
    run_ms(20);
    plugin_unload(lp);
    json_decref(podobj);
    json_decref(plabels);
    json_decref(la);
    json_decref(lb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_contains),
        cmocka_unit_test(test_load_errors_name_the_file),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_memory_limit_stops_the_plugin),
        cmocka_unit_test(test_time_limit_stops_the_plugin),
        cmocka_unit_test(test_error_in_callback_keeps_plugin),
        cmocka_unit_test(test_register_module),
        cmocka_unit_test(test_scheduler_steps),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
