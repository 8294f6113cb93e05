/* core/lua/lua_int.h - what the Lua host's files share: the plugin state,
 * callbacks run as coroutines ("tasks"), and the pieces each file adds to
 * the `skiff` table. Not for anything outside core/lua. */
#ifndef SKIFF_LUA_INT_H
#define SKIFF_LUA_INT_H

#include <stdint.h>

#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <skiff/client.h>
#include <skiff/controller.h>
#include <skiff/objects.h>
#include <skiff/plugin.h>

#include "lua/lua_host.h"
#include "object/registry.h"

/* Limits applied unless the plugin's settings say otherwise. */
#define LUA_DEFAULT_MEMORY_MB 64
#define LUA_DEFAULT_TIME_MS 1000

typedef struct lua_task lua_task_t;
typedef struct lua_watch lua_watch_t;
typedef struct lua_timer lua_timer_t;

/* How a task ended, for its finish function. */
enum { TASK_OK = 0, TASK_ERROR = 1, TASK_CANCELLED = 2 };

/* One call of a Lua function, run as a coroutine so that API calls inside
 * it can wait for their answer without blocking the loop. */
struct lua_task {
    lua_plugin_t *p;
    lua_State *co;
    int ref;          /* registry reference anchoring the coroutine */
    int dead;         /* finished or cancelled; freed when no answer is awaited */
    int waiting;      /* an API answer will resume it */
    int requeue;      /* skiff.requeue() was called */
    int64_t requeue_ms;
    char what[160];   /* "reconcile Website default/x", for messages */
    /* Runs once: TASK_OK with the function's results on co's stack (nres
     * of them), TASK_ERROR with the message in msg, or TASK_CANCELLED. */
    void (*finish)(lua_task_t *t, int how, int nres, const char *msg);
    void *data;
    lua_task_t *prev, *next;
};

struct lua_plugin {
    lua_State *L;
    uv_loop_t *loop;
    skiff_plugin_ctx_t *ctx;
    skiff_plugin_t desc;
    char *path, *dir, *name, *version, *description;
    skiff_setting_t *settings; /* the script's declared ones plus the limits */
    size_t nsettings;
    int start_ref, stop_ref, table_ref;
    /* limits */
    size_t mem_used, mem_limit;
    uint64_t time_limit_ns;
    uint64_t slice_start; /* lua_slice_clock() when the running slice began; 0 when idle */
    int over_time, over_memory;
    char failure[512];
    int failed;
    int started;
    /* what start made */
    lua_task_t *tasks;
    size_t ntasks;
    lua_watch_t *watches;
    lua_timer_t *timers;
    skiff_event_recorder_t *events;
    uint64_t reconciles;
    void *sched;     /* lua_sched.c: step table for scheduler plugins */
    void *admission; /* lua_admission.c */
};

/* ---- lua_host.c ---- */
/* The task running on L (a coroutine of a plugin), or NULL outside one. */
lua_task_t *lua_task_current(lua_State *L);
/* Starts fn (at the top of p->L's stack, under nargs arguments, all
 * popped) as a task; finish runs when it ends. Returns the task while it
 * waits for an answer, NULL when it has already finished (or could not
 * start: finish then ran with a NULL task). */
lua_task_t *lua_task_spawn(lua_plugin_t *p, int nargs, const char *what,
                           void (*finish)(lua_task_t *, int, int, const char *), void *data);
/* Resumes a task that was waiting, with nargs values pushed on t->co. */
void lua_task_resume(lua_task_t *t, int nargs);
/* An API answer for t arrived: 1 when t may be resumed, 0 when it was
 * cancelled meanwhile (then it has been freed). */
int lua_task_answer(lua_task_t *t);
/* Marks the plugin failed (limits exceeded, start failing): logged once,
 * everything it runs is stopped, its state shows failed. */
void lua_plugin_fail(lua_plugin_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Raises a Lua error unless L runs inside a task that may wait. */
lua_task_t *lua_need_task(lua_State *L, const char *fn);
/* Declares one more setting (for the kinds' own, such as failure-policy). */
int lua_plugin_add_setting(lua_plugin_t *p, const char *name, int type, const char *def,
                           const char *help);
void lua_plugin_log(lua_plugin_t *p, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The clock of the time limit (nanoseconds of the thread's CPU time),
 * never 0: slice_start doubles as "the script is running". */
uint64_t lua_slice_clock(void);

/* ---- lua_json.c: jansson <-> Lua ---- */
/* Pushes v as Lua values: objects and arrays become tables marked by the
 * metatables skiff.json.object_mt / array_mt (so empty ones keep their
 * type), integers stay integers, null becomes skiff.json.null. */
void lua_json_push(lua_State *L, const json_t *v);
/* The Lua value at idx as a new JSON value, or NULL with a message in err
 * (cycles, functions, keys that are not strings, depth). */
json_t *lua_json_to(lua_State *L, int idx, char *err, size_t errlen);
/* 1 when every field of want is in have with the same value (arrays:
 * same length, elements compared the same way), for drift checks. */
int lua_json_contains(const json_t *want, const json_t *have);
/* The same test with want a Lua value at idx, converted to nothing. */
int lua_json_contains_lua(lua_State *L, int idx, const json_t *have);
/* Opens skiff.json (encode, decode, null, array, object, copy, equal,
 * contains) on the table at the top of L's stack. */
void lua_json_open(lua_State *L);

/* ---- lua_client.c: get/list/create/update/patch/apply/delete ---- */
void lua_client_open(lua_State *L);
/* The kind a Lua caller names: "Deployment", "deployments",
 * "deployments.apps", "apps/v1/Deployment", or an object's apiVersion and
 * kind. NULL when the server does not serve it (yet). */
const kind_def_t *lua_kind_lookup(const char *name);
const kind_def_t *lua_kind_of_object(const json_t *obj);
/* Pushes nil, err with err = {code, reason, message} (HTTP-style). */
int lua_push_error(lua_State *L, int code, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- lua_watch.c: skiff.watch, skiff.cached, skiff.requeue ---- */
void lua_watch_open(lua_State *L);
/* Stops every watch of p; lua_watch_free_all frees them (at close). */
void lua_watch_stop_all(lua_plugin_t *p);
void lua_watch_free_all(lua_plugin_t *p);
/* The cached object of that kind and key from p's informers (borrowed), or
 * NULL; *cached tells whether p has an informer for the kind at all. */
json_t *lua_watch_cached(lua_plugin_t *p, const kind_def_t *k, const char *key, int *cached);

/* ---- lua_sched.c, lua_admission.c: the other plugin kinds ---- */
/* Builds the kind's vtable from the script's table at idx into p->desc. */
int lua_sched_build(lua_plugin_t *p, int idx, char *err, size_t errlen);
void lua_sched_free(lua_plugin_t *p);
int lua_admission_build(lua_plugin_t *p, int idx, char *err, size_t errlen);
void lua_admission_free(lua_plugin_t *p);

/* ---- lua_misc.c: log, event, timer, owner_ref, time, setting ---- */
void lua_misc_open(lua_State *L);
void lua_timers_stop_all(lua_plugin_t *p);

/* Parses a duration given to the SDK: a number of seconds or a string
 * such as "250ms", "10s", "1m". -1 when malformed. */
int64_t lua_duration_ms(lua_State *L, int idx);

#endif
