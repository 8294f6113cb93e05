/* core/lua/lua_host.c - runs a Lua plugin: its own lua_State with a memory
 * limit (a counting allocator) and a time limit per callback (an
 * instruction-count hook), the descriptor synthesized from the script's
 * skiff.plugin{...} table, and callbacks run as coroutines ("tasks") so
 * API calls inside them wait without blocking the loop.
 *
 * A script that exceeds a limit is stopped and reported with its name and
 * the reason; its state shows failed and the server runs on. An error in
 * one callback only fails that callback (a reconcile is retried with
 * back-off). What the `skiff` table offers is in the other lua_*.c files. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lualib.h>

#include "lua/lua_ffi.h"
#include "lua/lua_int.h"
#include "plugin/loader.h"
#include "plugin/registry.h"
#include "util/duration.h"
#include "util/log.h"

/* The hook looks at the clock every this many VM instructions. */
#define HOOK_EVERY 10000

typedef struct module_entry {
    char *name;
    lua_CFunction open;
} module_entry_t;

static module_entry_t *modules;
static size_t nmodules;

int lua_host_register_module(const char *name, lua_CFunction open)
{
    if (!name || !*name || !open) return SKIFF_EINVAL;
    for (size_t i = 0; i < nmodules; i++)
        if (strcmp(modules[i].name, name) == 0) return SKIFF_EEXIST;
    module_entry_t *n = realloc(modules, (nmodules + 1) * sizeof *n);
    if (!n) return SKIFF_ENOMEM;
    modules = n;
    char *copy = strdup(name);
    if (!copy) return SKIFF_ENOMEM;
    modules[nmodules++] = (module_entry_t){copy, open};
    return 0;
}

int lua_host_is_script(const char *name_or_path)
{
    size_t n = name_or_path ? strlen(name_or_path) : 0;
    return n > 4 && strcmp(name_or_path + n - 4, ".lua") == 0;
}

/* ---- limits ------------------------------------------------------------------ */

static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    lua_plugin_t *p = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        p->mem_used -= old;
        free(ptr);
        return NULL;
    }
    /* Only the script's own work counts against the limit (slice_start is
     * set while it runs): the host's allocations happen outside protected
     * calls, where a refusal could not be turned into a Lua error. */
    if (nsize > old && p->mem_limit && p->slice_start &&
        (p->over_memory || p->mem_used + (nsize - old) > p->mem_limit)) {
        p->over_memory = 1;
        return NULL;
    }
    void *n = realloc(ptr, nsize);
    if (!n) return NULL;
    p->mem_used = p->mem_used - old + nsize;
    return n;
}

static lua_plugin_t *plugin_of(lua_State *L)
{
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return ud;
}

lua_plugin_t *lua_host_plugin_of(lua_State *L) { return plugin_of(L); }
skiff_plugin_ctx_t *lua_plugin_ctx(lua_plugin_t *lp) { return lp ? lp->ctx : NULL; }

static void fmt_duration(uint64_t ns, char *buf, size_t len)
{
    uint64_t ms = ns / 1000000u;
    if (ms % 1000 == 0) snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
    else snprintf(buf, len, "%llums", (unsigned long long)ms);
}

uint64_t lua_slice_clock(void)
{
    /* CPU time of the loop's thread: on a busy machine a callback that is
     * merely descheduled does not count as running long */
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return uv_hrtime();
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + 1;
}

static void l_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_plugin_t *p = plugin_of(L);
    if (!p->slice_start || !p->time_limit_ns) return;
    if (!p->over_time && lua_slice_clock() - p->slice_start <= p->time_limit_ns) return;
    if (!p->over_time) {
        p->over_time = 1;
        /* from now on every instruction fails, so no pcall can swallow it */
        lua_sethook(L, l_hook, LUA_MASKCOUNT, 1);
    }
    char d[32];
    fmt_duration(p->time_limit_ns, d, sizeof d);
    luaL_error(L, "time limit of %s exceeded", d);
}

static int l_panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    log_error("lua", "unprotected error in a Lua plugin: %s", msg ? msg : "?");
    return 0; /* Lua aborts */
}

/* ---- logging and failure ------------------------------------------------------------ */

void lua_plugin_log(lua_plugin_t *p, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, p->name ? p->name : "lua", fmt, ap);
    va_end(ap);
}

const char *lua_plugin_failure(const lua_plugin_t *lp)
{
    return lp && lp->failed ? lp->failure : NULL;
}

size_t lua_plugin_busy(const lua_plugin_t *lp) { return lp ? lp->ntasks : 0; }
uint64_t lua_plugin_reconciles(const lua_plugin_t *lp) { return lp ? lp->reconciles : 0; }

static void stop_everything(lua_plugin_t *p);

typedef struct deferred {
    uv_timer_t timer;
    lua_plugin_t *p;
} deferred_t;

static void deferred_closed(uv_handle_t *h) { free(h->data); }

static void deferred_stop(uv_timer_t *t)
{
    deferred_t *d = t->data;
    stop_everything(d->p);
    uv_close((uv_handle_t *)&d->timer, deferred_closed);
}

void lua_plugin_fail(lua_plugin_t *p, const char *fmt, ...)
{
    if (p->failed) return;
    p->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->failure, sizeof p->failure, fmt, ap);
    va_end(ap);
    log_error(p->name ? p->name : "lua",
              "Lua plugin %s (%s) stopped: %s; the rest of the cluster keeps running",
              p->name ? p->name : "?", p->path, p->failure);
    /* The loader's record: a loader_plugin_t begins with the public
     * loaded_plugin_t, and host.c does not start a failed plugin again. */
    if (p->ctx && p->ctx->core_private) {
        loaded_plugin_t *lp = p->ctx->core_private;
        lp->state = PLUGIN_FAILED;
        /* and `skiff plugins list` shows why */
        char why[sizeof p->failure + 16];
        snprintf(why, sizeof why, "stopped: %s", p->failure);
        plugin_registry_note(lp, PLUGIN_REC_FAILED, why);
    }
    /* What is running now (a reconcile, an informer's handler) must
     * return before its controller goes: stop on the next loop turn. */
    deferred_t *d = calloc(1, sizeof *d);
    if (!d || !p->loop || uv_timer_init(p->loop, &d->timer) != 0) {
        free(d);
        return;
    }
    d->p = p;
    d->timer.data = d;
    uv_timer_start(&d->timer, deferred_stop, 0, 0);
}

/* ---- tasks ------------------------------------------------------------------------- */

lua_task_t *lua_task_current(lua_State *L)
{
    return *(lua_task_t **)lua_getextraspace(L);
}

lua_task_t *lua_need_task(lua_State *L, const char *fn)
{
    lua_task_t *t = lua_task_current(L);
    if (!t || !lua_isyieldable(L))
        luaL_error(L,
                   "%s waits for the API server: call it from a callback (start, a watch, a "
                   "timer), not while the script loads nor inside a coroutine of its own",
                   fn);
    return t;
}

static void task_free(lua_task_t *t)
{
    lua_plugin_t *p = t->p;
    if (t->prev) t->prev->next = t->next;
    else p->tasks = t->next;
    if (t->next) t->next->prev = t->prev;
    p->ntasks--;
    *(lua_task_t **)lua_getextraspace(t->co) = NULL;
    luaL_unref(p->L, LUA_REGISTRYINDEX, t->ref);
    free(t);
}

static void task_end(lua_task_t *t, int how, int nres, const char *msg)
{
    t->dead = 1;
    if (t->finish) t->finish(t, how, nres, msg);
    t->finish = NULL;
    if (!t->waiting) task_free(t);
}

static void task_run(lua_task_t *t, int nargs)
{
    lua_plugin_t *p = t->p;
    uint64_t saved = p->slice_start;
    p->slice_start = lua_slice_clock();
    t->waiting = 0;
    int nres = 0;
    int rc = lua_resume(t->co, p->L, nargs, &nres);
    p->slice_start = saved;
    if (rc == LUA_YIELD) {
        if (t->waiting) return;
        /* coroutine.yield() at the top of a callback: nothing would resume it */
        lua_settop(t->co, 0);
        task_end(t, TASK_ERROR, 0, "coroutine.yield() called outside a coroutine of the script's own");
        return;
    }
    if (rc == LUA_OK) {
        task_end(t, TASK_OK, nres, NULL);
        return;
    }
    const char *msg = lua_tostring(t->co, -1);
    if (p->over_memory)
        msg = "memory limit exceeded";
    luaL_traceback(p->L, t->co, msg ? msg : "(error object is not a string)", 0);
    const char *tb = lua_tostring(p->L, -1);
    const char *nl = tb ? strchr(tb, '\n') : NULL;
    char first[512];
    snprintf(first, sizeof first, "%.*s", nl ? (int)(nl - tb) : (int)sizeof first - 1, tb ? tb : "?");
    if (tb && nl) lua_plugin_log(p, SKIFF_LOG_DEBUG, "%s: %s", t->what, tb);
    int over_time = p->over_time, over_memory = p->over_memory;
    char what[sizeof t->what];
    memcpy(what, t->what, sizeof what);
    task_end(t, TASK_ERROR, 0, first);
    lua_pop(p->L, 1);
    if (over_time || over_memory) {
        char d[32];
        fmt_duration(p->time_limit_ns, d, sizeof d);
        if (over_time)
            lua_plugin_fail(p, "time limit of %s per callback exceeded in %s", d, what);
        else
            lua_plugin_fail(p, "memory limit of %zu MiB exceeded in %s", p->mem_limit >> 20,
                            what);
    }
}

lua_task_t *lua_task_spawn(lua_plugin_t *p, int nargs, const char *what,
                           void (*finish)(lua_task_t *, int, int, const char *), void *data)
{
    lua_State *L = p->L;
    lua_task_t *t = calloc(1, sizeof *t);
    if (!t || p->failed) {
        free(t);
        lua_pop(L, nargs + 1);
        lua_task_t tmp = {.p = p, .data = data, .dead = 1};
        if (finish) finish(&tmp, p->failed ? TASK_CANCELLED : TASK_ERROR, 0,
                           p->failed ? p->failure : "out of memory");
        return NULL;
    }
    t->p = p;
    t->finish = finish;
    t->data = data;
    snprintf(t->what, sizeof t->what, "%s", what ? what : "callback");
    t->co = lua_newthread(L);
    t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_xmove(L, t->co, nargs + 1);
    *(lua_task_t **)lua_getextraspace(t->co) = t;
    t->next = p->tasks;
    if (p->tasks) p->tasks->prev = t;
    p->tasks = t;
    p->ntasks++;
    task_run(t, nargs);
    /* t is freed when it finished at once */
    for (lua_task_t *x = p->tasks; x; x = x->next)
        if (x == t) return t;
    return NULL;
}

void lua_task_resume(lua_task_t *t, int nargs) { task_run(t, nargs); }

int lua_task_answer(lua_task_t *t)
{
    if (!t->dead) return 1;
    t->waiting = 0;
    task_free(t);
    return 0;
}

static void cancel_tasks(lua_plugin_t *p)
{
    for (lua_task_t *t = p->tasks, *next; t; t = next) {
        next = t->next;
        if (t->dead) continue;
        task_end(t, TASK_CANCELLED, 0, "stopped");
    }
}

/* ---- descriptor ------------------------------------------------------------------------ */

static char *field_string(lua_State *L, int idx, const char *field)
{
    lua_getfield(L, idx, field);
    char *s = NULL;
    if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)
        s = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    return s;
}

static int setting_type(const char *s)
{
    if (!s || !strcmp(s, "string")) return SKIFF_SETTING_STRING;
    if (!strcmp(s, "int") || !strcmp(s, "integer")) return SKIFF_SETTING_INT;
    if (!strcmp(s, "bool") || !strcmp(s, "boolean")) return SKIFF_SETTING_BOOL;
    if (!strcmp(s, "duration")) return SKIFF_SETTING_DURATION;
    return 0;
}

static int add_setting(lua_plugin_t *p, const char *name, int type, const char *def,
                       const char *help)
{
    skiff_setting_t *n = realloc(p->settings, (p->nsettings + 2) * sizeof *n);
    if (!n) return -1;
    p->settings = n;
    p->desc.settings = n;
    n[p->nsettings++] = (skiff_setting_t){strdup(name), type, def ? strdup(def) : NULL,
                                         help ? strdup(help) : NULL};
    n[p->nsettings] = (skiff_setting_t){NULL};
    return 0;
}

int lua_plugin_add_setting(lua_plugin_t *p, const char *name, int type, const char *def,
                           const char *help)
{
    return add_setting(p, name, type, def, help);
}

/* One entry of settings = {...}: {name=, type=, default=, help=}, with the
 * name from the key in the map form. */
static int read_setting(lua_plugin_t *p, lua_State *L, int idx, const char *key, char *err,
                        size_t errlen)
{
    if (!lua_istable(L, idx)) {
        snprintf(err, errlen, "settings: each setting is a table {name=, type=, default=, help=}");
        return -1;
    }
    char *name = key ? strdup(key) : field_string(L, idx, "name");
    char *type = field_string(L, idx, "type");
    char *def = NULL;
    lua_getfield(L, idx, "default");
    if (lua_isboolean(L, -1)) def = strdup(lua_toboolean(L, -1) ? "true" : "false");
    else if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)
        def = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    char *help = field_string(L, idx, "help");
    int rc = -1;
    int t = setting_type(type);
    if (!name || !*name) snprintf(err, errlen, "settings: a setting without a name");
    else if (!t)
        snprintf(err, errlen,
                 "settings: %s has type \"%s\"; use string, int, bool or duration", name, type);
    else if (!strcmp(name, "memory-limit") || !strcmp(name, "time-limit") ||
             !strcmp(name, "failure-policy"))
        snprintf(err, errlen, "settings: %s is declared by the Lua host for every Lua plugin", name);
    else rc = add_setting(p, name, t, def, help);
    free(name);
    free(type);
    free(def);
    free(help);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_settings(lua_plugin_t *p, lua_State *L, int idx, char *err, size_t errlen)
{
    lua_getfield(L, idx, "settings");
    int s = lua_gettop(L), rc = 0;
    if (lua_isnil(L, s)) {
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_istable(L, s)) {
        snprintf(err, errlen, "settings must be a table");
        lua_pop(L, 1);
        return -1;
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, s);
    if (n > 0) {
        for (lua_Integer i = 1; i <= n && rc == 0; i++) {
            lua_rawgeti(L, s, i);
            rc = read_setting(p, L, lua_gettop(L), NULL, err, errlen);
            lua_pop(L, 1);
        }
    } else {
        /* the map form: {replicas = {...}}, declared in name order */
        char **names = NULL;
        size_t count = 0;
        lua_pushnil(L);
        while (lua_next(L, s)) {
            lua_pop(L, 1);
            if (lua_type(L, -1) != LUA_TSTRING) continue;
            char **nn = realloc(names, (count + 1) * sizeof *nn);
            if (!nn) break;
            names = nn;
            names[count++] = strdup(lua_tostring(L, -1));
        }
        qsort(names, count, sizeof *names, cmp_str);
        for (size_t i = 0; i < count; i++) {
            if (rc == 0) {
                lua_getfield(L, s, names[i]);
                rc = read_setting(p, L, lua_gettop(L), names[i], err, errlen);
                lua_pop(L, 1);
            }
            free(names[i]);
        }
        free(names);
    }
    lua_pop(L, 1);
    return rc;
}

static int kind_of(const char *s)
{
    if (!s) return 0;
    if (!strcmp(s, "controller")) return SKIFF_PLUGIN_CONTROLLER;
    if (!strcmp(s, "scheduler")) return SKIFF_PLUGIN_SCHEDULER;
    if (!strcmp(s, "admission")) return SKIFF_PLUGIN_ADMISSION;
    return 0;
}

static int desc_init(skiff_plugin_ctx_t *ctx);
static int desc_start(skiff_plugin_ctx_t *ctx);
static void desc_stop(skiff_plugin_ctx_t *ctx);


static int build_desc(lua_plugin_t *p, int idx, char *err, size_t errlen)
{
    lua_State *L = p->L;
    p->name = field_string(L, idx, "name");
    p->version = field_string(L, idx, "version");
    p->description = field_string(L, idx, "description");
    char *kind = field_string(L, idx, "kind");
    int k = kind_of(kind);
    if (!p->name || !*p->name) {
        snprintf(err, errlen, "%s: skiff.plugin{} needs a name", p->path);
        free(kind);
        return -1;
    }
    if (!k) {
        snprintf(err, errlen,
                 "%s: plugin %s has kind \"%s\"; a Lua plugin is a \"controller\", "
                 "\"scheduler\" or \"admission\"",
                 p->path, p->name, kind ? kind : "");
        free(kind);
        return -1;
    }
    free(kind);
    char e[400];
    if (read_settings(p, L, idx, e, sizeof e) != 0) {
        snprintf(err, errlen, "%s: plugin %s: %s", p->path, p->name, e);
        return -1;
    }
    char mem[32];
    snprintf(mem, sizeof mem, "%d", LUA_DEFAULT_MEMORY_MB);
    if (add_setting(p, "memory-limit", SKIFF_SETTING_INT, mem,
                    "memory the script's Lua state may use, in MiB") != 0 ||
        add_setting(p, "time-limit", SKIFF_SETTING_DURATION, "1s",
                    "longest run of one callback before the plugin is stopped") != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    lua_getfield(L, idx, "start");
    p->start_ref = lua_isfunction(L, -1) ? luaL_ref(L, LUA_REGISTRYINDEX) : (lua_pop(L, 1), LUA_NOREF);
    lua_getfield(L, idx, "stop");
    p->stop_ref = lua_isfunction(L, -1) ? luaL_ref(L, LUA_REGISTRYINDEX) : (lua_pop(L, 1), LUA_NOREF);
    lua_pushvalue(L, idx);
    p->table_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    p->desc = (skiff_plugin_t){.abi_version = SKIFF_ABI_VERSION,
                               .name = p->name,
                               .version = p->version,
                               .kind = k,
                               .description = p->description,
                               .settings = p->settings,
                               .init = desc_init,
                               .start = desc_start,
                               .stop = desc_stop};
    if (k == SKIFF_PLUGIN_SCHEDULER && lua_sched_build(p, idx, err, errlen) != 0) return -1;
    if (k == SKIFF_PLUGIN_ADMISSION && lua_admission_build(p, idx, err, errlen) != 0) return -1;
    return 0;
}

/* ---- the state ------------------------------------------------------------------------- */

static const char *sdk_dir(void)
{
    static char dir[1024];
    const char *env = getenv("SKIFF_LUA_SDK");
    const char *cands[] = {env,
#ifdef SKIFF_LUA_SDK_DIR
                           SKIFF_LUA_SDK_DIR,
#endif
#ifdef SKIFF_LUA_SRC_DIR
                           SKIFF_LUA_SRC_DIR,
#endif
                           NULL};
    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
        if (!cands[i]) continue;
        snprintf(dir, sizeof dir, "%s/skiff.lua", cands[i]);
        if (access(dir, R_OK) == 0) {
            snprintf(dir, sizeof dir, "%s", cands[i]);
            return dir;
        }
    }
    return NULL;
}

/* Builds the skiff table and the Lua side of the SDK; at the top of the
 * stack on success. */
static int open_skiff(lua_plugin_t *p, char *err, size_t errlen)
{
    lua_State *L = p->L;
    const char *sdk = sdk_dir();
    if (!sdk) {
        snprintf(err, errlen,
                 "the Lua SDK (skiff.lua) was not found; set SKIFF_LUA_SDK to its directory");
        return -1;
    }
    /* require() finds modules next to the script, then the SDK's */
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/?.lua;%s/?.lua;%s/?/init.lua", p->dir, sdk, sdk);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, "");
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);
    /* a plugin shares the server's process: it may not end it */
    lua_getglobal(L, "os");
    lua_pushnil(L);
    lua_setfield(L, -2, "exit");
    lua_pop(L, 1);

    lua_newtable(L);
    int t = lua_gettop(L);
    lua_json_open(L);
    lua_client_open(L);
    lua_watch_open(L);
    lua_misc_open(L);
    lua_ffi_install(L); /* skiff.ffi: C functions of plugins (lua_ffi.c) */
    for (size_t i = 0; i < nmodules; i++) {
        lua_pushcfunction(L, modules[i].open);
        if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
            snprintf(err, errlen, "module skiff.%s failed to open: %s", modules[i].name,
                     lua_tostring(L, -1));
            return -1;
        }
        lua_setfield(L, t, modules[i].name);
    }
    char file[1100];
    snprintf(file, sizeof file, "%s/skiff.lua", sdk);
    if (luaL_loadfile(L, file) != LUA_OK) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1));
        return -1;
    }
    lua_pushvalue(L, t);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        snprintf(err, errlen, "%s: %s", file, lua_tostring(L, -1));
        return -1;
    }
    lua_pushvalue(L, t);
    lua_setglobal(L, "skiff");
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    lua_pushvalue(L, t);
    lua_setfield(L, -2, "skiff");
    lua_pop(L, 2);
    return 0;
}

static void free_plugin(lua_plugin_t *p)
{
    if (p->L) lua_close(p->L);
    for (size_t i = 0; i < p->nsettings; i++) {
        free((char *)p->settings[i].name);
        free((char *)p->settings[i].default_value);
        free((char *)p->settings[i].help);
    }
    free(p->settings);
    free(p->path);
    free(p->dir);
    free(p->name);
    free(p->version);
    free(p->description);
    free(p);
}

static int traceback(lua_State *L)
{
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

int lua_plugin_open(const char *path, uv_loop_t *loop, const skiff_plugin_t **desc,
                    lua_plugin_t **out, char *err, size_t errlen)
{
    *out = NULL;
    lua_plugin_t *p = calloc(1, sizeof *p);
    if (!p) return SKIFF_ENOMEM;
    p->loop = loop;
    p->path = strdup(path);
    p->dir = strdup(path);
    p->start_ref = p->stop_ref = p->table_ref = LUA_NOREF;
    p->mem_limit = (size_t)LUA_DEFAULT_MEMORY_MB << 20;
    p->time_limit_ns = (uint64_t)LUA_DEFAULT_TIME_MS * 1000000u;
    if (!p->path || !p->dir) goto oom;
    char *slash = strrchr(p->dir, '/');
    if (slash) *slash = '\0';
    else strcpy(p->dir, ".");
    p->L = lua_newstate(l_alloc, p);
    if (!p->L) goto oom;
    lua_atpanic(p->L, l_panic);
    *(lua_task_t **)lua_getextraspace(p->L) = NULL;
    luaL_openlibs(p->L);
    /* reconciles make many short-lived tables: the generational collector
     * spends less on them than the incremental one */
    lua_gc(p->L, LUA_GCGEN, 0, 0);
    lua_sethook(p->L, l_hook, LUA_MASKCOUNT, HOOK_EVERY);
    if (open_skiff(p, err, errlen) != 0) goto fail;
    lua_pop(p->L, 1);

    lua_pushcfunction(p->L, traceback);
    if (luaL_loadfile(p->L, path) != LUA_OK) {
        snprintf(err, errlen, "Lua plugin %s: %s", path, lua_tostring(p->L, -1));
        goto fail;
    }
    p->slice_start = lua_slice_clock();
    int rc = lua_pcall(p->L, 0, 1, -2);
    p->slice_start = 0;
    if (rc != LUA_OK) {
        const char *m = lua_tostring(p->L, -1);
        if (p->over_memory) m = "memory limit exceeded while loading";
        const char *nl = m ? strchr(m, '\n') : NULL;
        snprintf(err, errlen, "Lua plugin %s: %.*s", path, nl ? (int)(nl - m) : 400, m ? m : "?");
        goto fail;
    }
    if (!lua_istable(p->L, -1)) {
        snprintf(err, errlen, "Lua plugin %s: the script must end with `return skiff.plugin{...}`",
                 path);
        goto fail;
    }
    if (build_desc(p, lua_gettop(p->L), err, errlen) != 0) goto fail;
    lua_settop(p->L, 0);
    *desc = &p->desc;
    *out = p;
    return 0;
oom:
    snprintf(err, errlen, "out of memory loading %s", path);
    free_plugin(p);
    return SKIFF_ENOMEM;
fail:
    lua_sched_free(p);
    lua_admission_free(p);
    free_plugin(p);
    return SKIFF_EINVAL;
}

void lua_plugin_bind(lua_plugin_t *lp, skiff_plugin_ctx_t *ctx)
{
    lp->ctx = ctx;
    ctx->plugin_data = lp;
}

static void stop_everything(lua_plugin_t *p)
{
    cancel_tasks(p);
    lua_watch_stop_all(p);
    lua_timers_stop_all(p);
    if (p->events) skiff_event_recorder_free(p->events);
    p->events = NULL;
}

void lua_plugin_close(lua_plugin_t *p)
{
    if (!p) return;
    stop_everything(p);
    while (p->tasks) {
        p->tasks->waiting = 0;
        task_free(p->tasks);
    }
    lua_watch_free_all(p);
    lua_sched_free(p);
    lua_admission_free(p);
    free_plugin(p);
}

/* ---- hooks of the synthesized descriptor --------------------------------------------- */

static int desc_init(skiff_plugin_ctx_t *ctx)
{
    lua_plugin_t *p = ctx->plugin_data;
    const char *mem = ctx->setting(ctx, "memory-limit");
    const char *tl = ctx->setting(ctx, "time-limit");
    char *end = NULL;
    long mb = mem ? strtol(mem, &end, 10) : LUA_DEFAULT_MEMORY_MB;
    if (!mem || *end || mb < 1) {
        ctx->log(ctx, SKIFF_LOG_ERROR, "memory-limit \"%s\" is not a number of MiB (1 or more)",
                 mem ? mem : "");
        return SKIFF_EINVAL;
    }
    int64_t ms = 0;
    if (!tl || duration_parse_ms(tl, &ms) != 0 || ms < 1) {
        ctx->log(ctx, SKIFF_LOG_ERROR, "time-limit \"%s\" is not a duration such as 500ms or 2s",
                 tl ? tl : "");
        return SKIFF_EINVAL;
    }
    p->mem_limit = (size_t)mb << 20;
    p->time_limit_ns = (uint64_t)ms * 1000000u;
    return 0;
}

/* ctx for start and stop: {name=, settings={...typed values...}} */
static void push_ctx(lua_plugin_t *p)
{
    lua_State *L = p->L;
    lua_newtable(L);
    lua_pushstring(L, p->name);
    lua_setfield(L, -2, "name");
    lua_newtable(L);
    for (size_t i = 0; i < p->nsettings; i++) {
        const skiff_setting_t *s = &p->settings[i];
        const char *v = p->ctx ? p->ctx->setting(p->ctx, s->name) : s->default_value;
        if (!v) continue;
        int64_t ms;
        switch (s->type) {
        case SKIFF_SETTING_INT: lua_pushinteger(L, strtoll(v, NULL, 10)); break;
        case SKIFF_SETTING_BOOL:
            lua_pushboolean(L, !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"));
            break;
        case SKIFF_SETTING_DURATION:
            if (duration_parse_ms(v, &ms) == 0) lua_pushnumber(L, (double)ms / 1000.0);
            else lua_pushnil(L);
            break;
        default: lua_pushstring(L, v);
        }
        lua_setfield(L, -2, s->name);
    }
    lua_setfield(L, -2, "settings");
}

typedef struct start_state {
    int done, failed;
    char msg[512];
} start_state_t;

static void start_finished(lua_task_t *t, int how, int nres, const char *msg)
{
    start_state_t *s = t->data;
    lua_plugin_t *p = t->p;
    if (how == TASK_ERROR) {
        if (s) {
            s->failed = 1;
            snprintf(s->msg, sizeof s->msg, "%s", msg ? msg : "error");
        } else {
            lua_plugin_fail(p, "start failed: %s", msg ? msg : "error");
        }
    }
    if (s) s->done = 1;
    t->data = NULL;
}

static int desc_start(skiff_plugin_ctx_t *ctx)
{
    lua_plugin_t *p = ctx->plugin_data;
    if (p->failed) return SKIFF_EINVAL;
    p->started = 1;
    if (p->start_ref == LUA_NOREF) return 0;
    start_state_t s = {0};
    lua_rawgeti(p->L, LUA_REGISTRYINDEX, p->start_ref);
    push_ctx(p);
    lua_task_t *t = lua_task_spawn(p, 1, "start", start_finished, &s);
    if (!t && !s.done) return SKIFF_ENOMEM;
    if (s.done) {
        if (s.failed) {
            ctx->log(ctx, SKIFF_LOG_ERROR, "start: %s", s.msg);
            stop_everything(p);
            return SKIFF_EINVAL;
        }
        return 0;
    }
    /* start waits for the API: a failure later stops the plugin */
    if (t) t->data = NULL;
    return 0;
}

static void stop_finished(lua_task_t *t, int how, int nres, const char *msg)
{
    if (how == TASK_ERROR)
        lua_plugin_log(t->p, SKIFF_LOG_WARN, "stop: %s", msg ? msg : "error");
}

static void desc_stop(skiff_plugin_ctx_t *ctx)
{
    lua_plugin_t *p = ctx->plugin_data;
    if (!p->started) return;
    p->started = 0;
    if (p->stop_ref != LUA_NOREF && !p->failed) {
        lua_rawgeti(p->L, LUA_REGISTRYINDEX, p->stop_ref);
        push_ctx(p);
        lua_task_spawn(p, 1, "stop", stop_finished, NULL);
    }
    stop_everything(p);
}
