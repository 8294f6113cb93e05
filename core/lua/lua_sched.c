/* core/lua/lua_sched.c - a Lua scheduler plugin lends filter and score
 * steps through the same skiff_sched_step_table_t a C step plugin exports
 * (skiff/scheduler.h), so the default scheduler takes them by name
 * ("plugin/StepName") in its filters and scores:
 *
 *   return skiff.plugin{ name = "zones", kind = "scheduler", steps = {
 *     { name = "PreferZone",
 *       filter = function(pod, node) return true end,   -- or false, "reason"
 *       score = function(pod, node) return 0..100 end } } }
 *
 * A cycle is synchronous, so these functions run directly under the
 * plugin's time limit (no API calls: they cannot wait). pod and node are
 * read-only views built by the host: pod {namespace, name, uid, labels,
 * priority, requests, object} and node {name, labels, allocatable,
 * requested, pods, unschedulable, object} (object: the Node as the nodes
 * view keeps it, skiff_node_view); a node's view is kept until the
 * node changes. A step that raises an error rejects the node (filter) or
 * scores 0 and is logged; once the plugin is stopped (a limit) its steps
 * let every node pass with score 0, so scheduling goes on. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/scheduler.h>

#include "lua/lua_int.h"

typedef struct lstep {
    lua_plugin_t *p;
    char *name;
    int filter_ref, score_ref;
} lstep_t;

typedef struct lsched {
    skiff_sched_step_table_t table;
    skiff_sched_step_t *steps;
    lstep_t *ls;
    size_t n;
    int node_cache_ref; /* name -> {gen = , view = } */
} lsched_t;

/* per-cycle state: the pod's view */
typedef struct cycle_state {
    lua_plugin_t *p;
    int pod_ref;
} cycle_state_t;

static void push_resources(lua_State *L, const skiff_sched_resources_t *r)
{
    lua_createtable(L, 0, 4 + (int)r->n_scalar);
    lua_pushinteger(L, r->cpu);
    lua_setfield(L, -2, "cpu");
    lua_pushinteger(L, r->memory);
    lua_setfield(L, -2, "memory");
    lua_pushinteger(L, r->ephemeral_storage);
    lua_setfield(L, -2, "ephemeral-storage");
    lua_pushinteger(L, r->pods);
    lua_setfield(L, -2, "pods");
    for (size_t i = 0; i < r->n_scalar; i++) {
        lua_pushinteger(L, r->scalar[i].milli);
        lua_setfield(L, -2, r->scalar[i].name);
    }
}

static void push_labels(lua_State *L, const json_t *labels)
{
    if (labels) lua_json_push(L, labels);
    else lua_newtable(L);
}

static void push_pod(lua_State *L, const skiff_sched_pod_t *pod)
{
    lua_createtable(L, 0, 8);
    lua_pushstring(L, pod->ns ? pod->ns : "");
    lua_setfield(L, -2, "namespace");
    lua_pushstring(L, pod->name ? pod->name : "");
    lua_setfield(L, -2, "name");
    lua_pushstring(L, pod->uid ? pod->uid : "");
    lua_setfield(L, -2, "uid");
    push_labels(L, pod->labels);
    lua_setfield(L, -2, "labels");
    lua_pushinteger(L, pod->priority);
    lua_setfield(L, -2, "priority");
    push_resources(L, &pod->requests);
    lua_setfield(L, -2, "requests");
    lua_json_push(L, pod->obj);
    lua_setfield(L, -2, "object");
}

/* The node's view, rebuilt when node->generation moved. */
static void push_node(lsched_t *s, lua_State *L, const skiff_sched_node_t *node)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->node_cache_ref);
    int cache = lua_gettop(L);
    lua_getfield(L, cache, node->name);
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "gen");
        if (lua_tointeger(L, -1) == (lua_Integer)node->generation) {
            lua_getfield(L, -2, "view");
            lua_replace(L, cache);
            lua_settop(L, cache);
            return;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)node->generation);
    lua_setfield(L, -2, "gen");
    lua_createtable(L, 0, 8);
    lua_pushstring(L, node->name);
    lua_setfield(L, -2, "name");
    push_labels(L, node->labels);
    lua_setfield(L, -2, "labels");
    push_resources(L, &node->allocatable);
    lua_setfield(L, -2, "allocatable");
    push_resources(L, &node->requested);
    lua_setfield(L, -2, "requested");
    lua_pushinteger(L, (lua_Integer)node->n_pods);
    lua_setfield(L, -2, "pods");
    lua_pushboolean(L, node->unschedulable);
    lua_setfield(L, -2, "unschedulable");
    lua_json_push(L, node->obj);
    lua_setfield(L, -2, "object");
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "view");
    /* cache[name] = entry; leave the view */
    lua_pushvalue(L, -2);
    lua_setfield(L, cache, node->name);
    lua_replace(L, cache);
    lua_settop(L, cache);
}

static int pod_view(lstep_t *st, const skiff_sched_cycle_t *cy, void **state)
{
    if (*state) return 0;
    cycle_state_t *cs = calloc(1, sizeof *cs);
    if (!cs) return -1;
    cs->p = st->p;
    push_pod(st->p->L, cy->pod);
    cs->pod_ref = luaL_ref(st->p->L, LUA_REGISTRYINDEX);
    *state = cs;
    return 0;
}

static void free_state(void *state)
{
    cycle_state_t *cs = state;
    if (!cs) return;
    luaL_unref(cs->p->L, LUA_REGISTRYINDEX, cs->pod_ref);
    free(cs);
}

static int pre_filter(void *data, const skiff_sched_cycle_t *cy, void **state,
                      skiff_sched_reasons_t *why)
{
    lstep_t *st = data;
    if (st->p->failed) return SKIFF_SCHED_SKIP;
    return pod_view(st, cy, state) == 0 ? SKIFF_SCHED_OK : SKIFF_SCHED_SKIP;
}

static int pre_score(void *data, const skiff_sched_cycle_t *cy, void **state)
{
    lstep_t *st = data;
    return st->p->failed ? 0 : pod_view(st, cy, state);
}

/* Calls fn(pod, node) under the time limit; LUA_OK with its results on the
 * stack, or an error (logged; the plugin stopped when over a limit). */
static int call_step(lstep_t *st, int fn_ref, void *state, const skiff_sched_node_t *node,
                     const char *hook)
{
    lua_plugin_t *p = st->p;
    lua_State *L = p->L;
    cycle_state_t *cs = state;
    lsched_t *s = p->sched;
    lua_rawgeti(L, LUA_REGISTRYINDEX, fn_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, cs->pod_ref);
    push_node(s, L, node);
    p->slice_start = lua_slice_clock();
    int rc = lua_pcall(L, 2, 2, 0);
    p->slice_start = 0;
    if (rc == LUA_OK) return LUA_OK;
    const char *msg = p->over_memory ? "memory limit exceeded" : lua_tostring(L, -1);
    lua_plugin_log(p, SKIFF_LOG_WARN, "step %s: %s of node %s failed: %s", st->name, hook,
                   node->name, msg ? msg : "?");
    lua_pop(L, 1);
    if (p->over_time || p->over_memory) {
        char what[200];
        snprintf(what, sizeof what, "the %s of step %s", hook, st->name);
        if (p->over_time)
            lua_plugin_fail(p, "time limit of %llums per callback exceeded in %s",
                            (unsigned long long)(p->time_limit_ns / 1000000u), what);
        else
            lua_plugin_fail(p, "memory limit of %zu MiB exceeded in %s", p->mem_limit >> 20, what);
    }
    return rc;
}

static int filter(void *data, const skiff_sched_cycle_t *cy, void *state,
                  const skiff_sched_node_t *node, skiff_sched_reasons_t *why)
{
    lstep_t *st = data;
    if (st->p->failed || !state) return SKIFF_SCHED_OK;
    lua_State *L = st->p->L;
    if (call_step(st, st->filter_ref, state, node, "filter") != LUA_OK) {
        char r[160];
        snprintf(r, sizeof r, "%s failed", st->name);
        skiff_sched_reason(why, r);
        return SKIFF_SCHED_UNRESOLVABLE;
    }
    int code = SKIFF_SCHED_OK;
    if (lua_type(L, -2) == LUA_TSTRING && !strcmp(lua_tostring(L, -2), "unschedulable"))
        code = SKIFF_SCHED_UNSCHEDULABLE;
    else if (!lua_toboolean(L, -2)) code = SKIFF_SCHED_UNRESOLVABLE;
    if (code != SKIFF_SCHED_OK) {
        const char *reason = lua_tostring(L, -1);
        char r[160];
        if (!reason) snprintf(r, sizeof r, "node(s) did not match %s", st->name);
        skiff_sched_reason(why, reason ? reason : r);
    }
    lua_pop(L, 2);
    return code;
}

static int64_t score(void *data, const skiff_sched_cycle_t *cy, void *state,
                     const skiff_sched_node_t *node)
{
    lstep_t *st = data;
    if (st->p->failed || !state) return 0;
    lua_State *L = st->p->L;
    if (call_step(st, st->score_ref, state, node, "score") != LUA_OK) return 0;
    double v = lua_tonumber(L, -2);
    lua_pop(L, 2);
    if (!(v > 0)) return 0;
    if (v > SKIFF_SCHED_MAX_SCORE) return SKIFF_SCHED_MAX_SCORE;
    return (int64_t)(v + 0.5);
}

void lua_sched_free(lua_plugin_t *p)
{
    lsched_t *s = p->sched;
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) free(s->ls[i].name);
    free(s->ls);
    free(s->steps);
    free(s);
    p->sched = NULL;
}

int lua_sched_build(lua_plugin_t *p, int idx, char *err, size_t errlen)
{
    lua_State *L = p->L;
    lua_getfield(L, idx, "steps");
    int t = lua_gettop(L);
    size_t n = lua_istable(L, t) ? lua_rawlen(L, t) : 0;
    if (n == 0) {
        snprintf(err, errlen,
                 "%s: a scheduler plugin lends steps: steps = {{name = ..., filter = fn, score = fn}}",
                 p->path);
        return -1;
    }
    lsched_t *s = calloc(1, sizeof *s);
    if (!s) return -1;
    p->sched = s;
    s->steps = calloc(n, sizeof *s->steps);
    s->ls = calloc(n, sizeof *s->ls);
    if (!s->steps || !s->ls) return -1;
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, t, (lua_Integer)i + 1);
        int e = lua_gettop(L);
        lstep_t *st = &s->ls[i];
        st->p = p;
        st->filter_ref = st->score_ref = LUA_NOREF;
        lua_getfield(L, e, "name");
        const char *name = lua_tostring(L, -1);
        if (!lua_istable(L, e) || !name || !*name) {
            snprintf(err, errlen, "%s: step %zu needs a name", p->path, i + 1);
            return -1;
        }
        st->name = strdup(name);
        s->n++;
        lua_pop(L, 1);
        lua_getfield(L, e, "filter");
        if (lua_isfunction(L, -1)) st->filter_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        else lua_pop(L, 1);
        lua_getfield(L, e, "score");
        if (lua_isfunction(L, -1)) st->score_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        else lua_pop(L, 1);
        if (st->filter_ref == LUA_NOREF && st->score_ref == LUA_NOREF) {
            snprintf(err, errlen, "%s: step %s has neither filter nor score", p->path, st->name);
            return -1;
        }
        s->steps[i] = (skiff_sched_step_t){
            .name = st->name,
            .pre_filter = st->filter_ref != LUA_NOREF ? pre_filter : NULL,
            .filter = st->filter_ref != LUA_NOREF ? filter : NULL,
            .pre_score = st->score_ref != LUA_NOREF ? pre_score : NULL,
            .score = st->score_ref != LUA_NOREF ? score : NULL,
            .free_state = free_state,
            .data = st,
        };
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_newtable(L);
    s->node_cache_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    s->table = (skiff_sched_step_table_t){SKIFF_SCHED_STEP_ABI, s->steps, s->n};
    p->desc.vtable = &s->table;
    return 0;
}
