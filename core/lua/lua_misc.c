/* core/lua/lua_misc.c - the small parts of the skiff table: log, event,
 * timer/every/sleep, owner_ref, now/timestamp/parse_time, setting, and
 * the duration arguments they share. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/lua_int.h"
#include "util/duration.h"
#include "util/strbuf.h"

int64_t lua_duration_ms(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TNUMBER) {
        double s = lua_tonumber(L, idx);
        return s >= 0 && s < 1e12 ? (int64_t)(s * 1000.0 + 0.5) : -1;
    }
    const char *str = lua_tostring(L, idx);
    int64_t ms;
    if (!str || duration_parse_ms(str, &ms) != 0) return -1;
    return ms;
}

/* skiff.log(level, ...): one line tagged with the plugin's name */
static int l_log(lua_State *L)
{
    lua_plugin_t *p = lua_host_plugin_of(L);
    const char *lv = luaL_checkstring(L, 1);
    int level = !strcmp(lv, "error") ? SKIFF_LOG_ERROR
                : !strcmp(lv, "warn") || !strcmp(lv, "warning") ? SKIFF_LOG_WARN
                : !strcmp(lv, "info") ? SKIFF_LOG_INFO
                : !strcmp(lv, "debug") ? SKIFF_LOG_DEBUG
                : -1;
    if (level < 0) return luaL_error(L, "skiff.log: level \"%s\"; use error, warn, info or debug", lv);
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 2; i <= n; i++) {
        if (i > 2) luaL_addchar(&b, ' ');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_plugin_log(p, level, "%s", lua_tostring(L, -1));
    return 0;
}

/* skiff.event(obj, type, reason, message): a core/v1 Event about obj, as
 * `kubectl describe` shows them */
static int l_event(lua_State *L)
{
    lua_plugin_t *p = lua_host_plugin_of(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *type = luaL_checkstring(L, 2);
    const char *reason = luaL_checkstring(L, 3);
    const char *msg = luaL_optstring(L, 4, "");
    if (strcmp(type, "Normal") && strcmp(type, "Warning"))
        return luaL_error(L, "skiff.event: type \"%s\"; use Normal or Warning", type);
    if (!p->ctx || !p->ctx->client) return luaL_error(L, "skiff.event: no API client");
    char err[256];
    json_t *obj = lua_json_to(L, 1, err, sizeof err);
    if (!obj) return luaL_error(L, "skiff.event: %s", err);
    if (!p->events) p->events = skiff_event_recorder_new(p->ctx->client, p->name);
    if (p->events) skiff_event_record(p->events, obj, type, reason, "%s", msg);
    json_decref(obj);
    return 0;
}

/* skiff.owner_ref(obj [, controller]): an ownerReference naming obj,
 * controller (and blockOwnerDeletion) unless controller is false. Reads
 * the four fields it needs rather than converting the whole object: a
 * reconcile calls it for every object it owns. */
static const char *str_field(lua_State *L, int idx, const char *k)
{
    lua_getfield(L, idx, k);
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1); /* still anchored in the table */
    return s;
}

static int l_owner_ref(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int controller = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
    const char *av = str_field(L, 1, "apiVersion"), *kind = str_field(L, 1, "kind");
    lua_getfield(L, 1, "metadata");
    const char *name = lua_istable(L, -1) ? str_field(L, -1, "name") : NULL;
    const char *uid = lua_istable(L, -1) ? str_field(L, -1, "uid") : NULL;
    if (!av || !kind || !name || !uid)
        return luaL_error(L, "skiff.owner_ref: the owner needs apiVersion, kind, metadata.name "
                             "and metadata.uid (an object read from the API)");
    lua_createtable(L, 0, 6);
    lua_pushstring(L, av);
    lua_setfield(L, -2, "apiVersion");
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, uid);
    lua_setfield(L, -2, "uid");
    if (controller) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "controller");
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "blockOwnerDeletion");
    }
    return 1;
}

static int l_now(lua_State *L)
{
    lua_pushnumber(L, (double)skiff_now_ms() / 1000.0);
    return 1;
}

/* skiff.timestamp([seconds]): RFC 3339 UTC, as metadata times are written */
static int l_timestamp(lua_State *L)
{
    int64_t ms = lua_isnoneornil(L, 1) ? skiff_now_ms() : (int64_t)(luaL_checknumber(L, 1) * 1000.0);
    char buf[40];
    skiff_time_format(ms, buf, sizeof buf);
    lua_pushstring(L, buf);
    return 1;
}

static int l_parse_time(lua_State *L)
{
    int64_t ms = skiff_time_parse(luaL_checkstring(L, 1));
    if (ms < 0) lua_pushnil(L);
    else lua_pushnumber(L, (double)ms / 1000.0);
    return 1;
}

static int l_setting(lua_State *L)
{
    lua_plugin_t *p = lua_host_plugin_of(L);
    const char *name = luaL_checkstring(L, 1);
    if (!p->ctx) return luaL_error(L, "skiff.setting: settings are read from start on");
    const char *v = p->ctx->setting(p->ctx, name);
    if (v) lua_pushstring(L, v);
    else lua_pushnil(L);
    return 1;
}

/* ---- timers --------------------------------------------------------------------------- */

struct lua_timer {
    uv_timer_t h;
    lua_plugin_t *p;
    int fn_ref;
    int repeat;
    int running; /* a run is in flight: a repeating timer skips its ticks */
    int closed;
    uint64_t id;
    lua_timer_t *next;
};

static uint64_t next_timer_id = 1;

static void timer_closed(uv_handle_t *h) { free(h->data); }

static void timer_unlink(lua_timer_t *tm)
{
    lua_plugin_t *p = tm->p;
    for (lua_timer_t **pp = &p->timers; *pp; pp = &(*pp)->next)
        if (*pp == tm) {
            *pp = tm->next;
            break;
        }
}

static void timer_close(lua_timer_t *tm)
{
    if (tm->closed) return;
    tm->closed = 1;
    timer_unlink(tm);
    luaL_unref(tm->p->L, LUA_REGISTRYINDEX, tm->fn_ref);
    uv_timer_stop(&tm->h);
    /* while a run is in flight, its finish closes the handle */
    if (!tm->running) uv_close((uv_handle_t *)&tm->h, timer_closed);
}

void lua_timers_stop_all(lua_plugin_t *p)
{
    while (p->timers) timer_close(p->timers);
}

static void timer_finished(lua_task_t *t, int how, int nres, const char *msg)
{
    lua_timer_t *tm = t->data;
    if (!tm) return;
    tm->running = 0;
    if (how == TASK_ERROR) lua_plugin_log(t->p, SKIFF_LOG_WARN, "%s failed: %s", t->what, msg);
    if (tm->closed) {
        uv_close((uv_handle_t *)&tm->h, timer_closed);
        return;
    }
    if (!tm->repeat) timer_close(tm);
}

static void on_timer(uv_timer_t *h)
{
    lua_timer_t *tm = h->data;
    if (tm->closed || tm->running || tm->p->failed) return;
    tm->running = 1;
    lua_rawgeti(tm->p->L, LUA_REGISTRYINDEX, tm->fn_ref);
    char what[64];
    snprintf(what, sizeof what, "timer %llu", (unsigned long long)tm->id);
    lua_task_spawn(tm->p, 0, what, timer_finished, tm);
}

static int l_timer_stop(lua_State *L)
{
    lua_plugin_t *p = lua_host_plugin_of(L);
    uint64_t id = (uint64_t)lua_tointeger(L, lua_upvalueindex(1));
    for (lua_timer_t *tm = p->timers; tm; tm = tm->next)
        if (tm->id == id) {
            timer_close(tm);
            break;
        }
    return 0;
}

static int start_timer(lua_State *L, int repeat)
{
    lua_plugin_t *p = lua_host_plugin_of(L);
    int64_t ms = lua_duration_ms(L, 1);
    if (ms < 0) return luaL_error(L, "skiff.timer: after is a duration (seconds or \"10s\")");
    if (repeat && ms < 1) return luaL_error(L, "skiff.every: the period must be positive");
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (!p->loop) return luaL_error(L, "skiff.timer: no event loop");
    lua_timer_t *tm = calloc(1, sizeof *tm);
    if (!tm) return luaL_error(L, "out of memory");
    tm->p = p;
    tm->repeat = repeat;
    tm->id = next_timer_id++;
    lua_pushvalue(L, 2);
    tm->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    uv_timer_init(p->loop, &tm->h);
    tm->h.data = tm;
    uv_timer_start(&tm->h, on_timer, (uint64_t)ms, repeat ? (uint64_t)ms : 0);
    tm->next = p->timers;
    p->timers = tm;
    /* the handle: {stop = function} */
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, (lua_Integer)tm->id);
    lua_pushcclosure(L, l_timer_stop, 1);
    lua_setfield(L, -2, "stop");
    return 1;
}

/* skiff.timer(after, fn): fn runs once after `after`; skiff.every(period,
 * fn): every period (a tick is skipped while the previous run waits). */
static int l_timer(lua_State *L) { return start_timer(L, 0); }
static int l_every(lua_State *L) { return start_timer(L, 1); }

/* skiff.sleep(after): the calling callback waits, the loop runs on */
typedef struct sleeper {
    uv_timer_t h;
    lua_task_t *t;
} sleeper_t;

static void sleeper_closed(uv_handle_t *h) { free(h->data); }

static void on_wake(uv_timer_t *h)
{
    sleeper_t *s = h->data;
    lua_task_t *t = s->t;
    uv_close((uv_handle_t *)h, sleeper_closed);
    if (lua_task_answer(t)) lua_task_resume(t, 0);
}

static int l_sleep(lua_State *L)
{
    lua_task_t *t = lua_need_task(L, "skiff.sleep");
    int64_t ms = lua_duration_ms(L, 1);
    if (ms < 0) return luaL_error(L, "skiff.sleep: a duration (seconds or \"100ms\")");
    sleeper_t *s = calloc(1, sizeof *s);
    if (!s) return luaL_error(L, "out of memory");
    s->t = t;
    uv_timer_init(t->p->loop, &s->h);
    s->h.data = s;
    uv_timer_start(&s->h, on_wake, (uint64_t)ms, 0);
    t->waiting = 1;
    return lua_yield(L, 0);
}

void lua_misc_open(lua_State *L)
{
    static const luaL_Reg fns[] = {{"log", l_log},
                                   {"event", l_event},
                                   {"owner_ref", l_owner_ref},
                                   {"now", l_now},
                                   {"timestamp", l_timestamp},
                                   {"parse_time", l_parse_time},
                                   {"setting", l_setting},
                                   {"timer", l_timer},
                                   {"every", l_every},
                                   {"sleep", l_sleep},
                                   {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
