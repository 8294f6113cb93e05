/* core/admission/pod_security_checks.c - the checks of the Pod Security
 * Standards, in the order Kubernetes reports them (by check ID). Baseline
 * forbids host namespaces, privileged containers, added capabilities
 * beyond the default set, hostPath volumes, host ports, unconfined
 * AppArmor, custom SELinux types/users/roles, unmasked /proc, unconfined
 * seccomp, unsafe sysctls and Windows host processes. Restricted adds:
 * allowPrivilegeEscalation=false, drop ALL capabilities (only
 * NET_BIND_SERVICE may be added), only safe volume types, runAsNonRoot,
 * no runAsUser=0, and a RuntimeDefault or Localhost seccomp profile.
 * Every version label evaluates the latest checks. Nothing here reads
 * the server. */
#define _GNU_SOURCE
#include "admission/pod_security_checks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/strbuf.h"

#define MAX_NAMES 64

typedef struct names {
    const char *v[MAX_NAMES];
    size_t n;
} names_t;

/* in insertion order, or sorted and unique (a Go sets.String's List) */
static void names_add(names_t *l, const char *s)
{
    if (l->n < MAX_NAMES) l->v[l->n++] = s ? s : "";
}

static void names_add_set(names_t *l, const char *s)
{
    if (!s) s = "";
    size_t i = 0;
    while (i < l->n && strcmp(l->v[i], s) < 0) i++;
    if (i < l->n && strcmp(l->v[i], s) == 0) return;
    if (l->n == MAX_NAMES) return;
    memmove(&l->v[i + 1], &l->v[i], (l->n - i) * sizeof *l->v);
    l->v[i] = s;
    l->n++;
}

static void join_quote(strbuf_t *b, const names_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (i) strbuf_add(b, ", ");
        strbuf_add(b, "\"");
        strbuf_add(b, l->v[i]);
        strbuf_add(b, "\"");
    }
}

static void join(strbuf_t *b, const names_t *l, const char *sep)
{
    for (size_t i = 0; i < l->n; i++) {
        if (i) strbuf_add(b, sep);
        strbuf_add(b, l->v[i]);
    }
}

static const char *plural(const char *one, const char *many, size_t n)
{
    return n == 1 ? one : many;
}

/* "container \"a\"" / "containers \"a\", \"b\"" */
static void containers_phrase(strbuf_t *b, const names_t *l)
{
    strbuf_add(b, plural("container ", "containers ", l->n));
    join_quote(b, l);
}

typedef struct result {
    strbuf_t out; /* "reason (detail), ..." */
    int n;
} result_t;

static void violation(result_t *r, const char *reason, const char *detail)
{
    if (r->n++) strbuf_add(&r->out, ", ");
    strbuf_add(&r->out, reason);
    if (detail && *detail) {
        strbuf_add(&r->out, " (");
        strbuf_add(&r->out, detail);
        strbuf_add(&r->out, ")");
    }
}

/* init containers, containers, ephemeral containers: Kubernetes' visit order */
typedef void (*visit_fn)(const json_t *c, const char *name, void *data);
static void visit(const json_t *spec, visit_fn fn, void *data)
{
    static const char *const lists[] = {"initContainers", "containers", "ephemeralContainers"};
    for (int l = 0; l < 3; l++) {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(spec, lists[l]), i, c)
            fn(c, json_string_value(json_object_get(c, "name")), data);
    }
}

static const json_t *sc_get(const json_t *c, const char *field)
{
    return json_object_get(json_object_get(c, "securityContext"), field);
}

/* ---- the checks, by ID ------------------------------------------------------ */

static void ape_visit(const json_t *c, const char *name, void *data)
{
    const json_t *v = sc_get(c, "allowPrivilegeEscalation");
    if (!json_is_false(v)) names_add(data, name);
}

static void check_allow_privilege_escalation(result_t *r, const json_t *meta, const json_t *spec)
{
    names_t bad = {0};
    visit(spec, ape_visit, &bad);
    if (!bad.n) return;
    strbuf_t d = {0};
    containers_phrase(&d, &bad);
    strbuf_add(&d, " must set securityContext.allowPrivilegeEscalation=false");
    violation(r, "allowPrivilegeEscalation != false", d.p);
    strbuf_free(&d);
}

static int apparmor_allowed(const char *v)
{
    return !v || !*v || !strcmp(v, "runtime/default") || !strncmp(v, "localhost/", 10);
}

typedef struct aa {
    names_t bad;
    names_t types;
} aa_t;

static void aa_visit(const json_t *c, const char *name, void *data)
{
    const char *t = json_string_value(json_object_get(sc_get(c, "appArmorProfile"), "type"));
    if (t && !strcmp(t, "Unconfined")) names_add(&((aa_t *)data)->bad, name);
}

static void check_apparmor(result_t *r, const json_t *meta, const json_t *spec)
{
    names_t forbidden = {0};
    char *texts[MAX_NAMES];
    size_t nt = 0;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(meta, "annotations"), k, v)
    {
        if (strncmp(k, "container.apparmor.security.beta.kubernetes.io/", 48) != 0) continue;
        if (apparmor_allowed(json_string_value(v)) || nt == MAX_NAMES) continue;
        if (asprintf(&texts[nt], "%s=\"%s\"", k, json_string_value(v) ? json_string_value(v) : "") < 0)
            continue;
        names_add_set(&forbidden, texts[nt++]);
    }
    aa_t aa = {{{0}, 0}, {{0}, 0}};
    const char *pt = json_string_value(
        json_object_get(json_object_get(json_object_get(spec, "securityContext"), "appArmorProfile"), "type"));
    visit(spec, aa_visit, &aa);
    if (forbidden.n) {
        strbuf_t d = {0};
        join(&d, &forbidden, ", ");
        violation(r, plural("forbidden AppArmor profile", "forbidden AppArmor profiles", forbidden.n),
                  d.p);
        strbuf_free(&d);
    } else if ((pt && !strcmp(pt, "Unconfined")) || aa.bad.n) {
        strbuf_t d = {0};
        if (pt && !strcmp(pt, "Unconfined")) strbuf_add(&d, "pod");
        if (aa.bad.n) {
            if (d.len) strbuf_add(&d, " and ");
            containers_phrase(&d, &aa.bad);
        }
        strbuf_add(&d, " must not set securityContext.appArmorProfile.type to \"Unconfined\"");
        violation(r, "forbidden AppArmor profile", d.p);
        strbuf_free(&d);
    }
    for (size_t i = 0; i < nt; i++) free(texts[i]);
}

static const char *const baseline_caps[] = {"AUDIT_WRITE", "CHOWN",    "DAC_OVERRIDE",
                                            "FOWNER",      "FSETID",   "KILL",
                                            "MKNOD",       "NET_BIND_SERVICE",
                                            "SETFCAP",     "SETGID",   "SETPCAP",
                                            "SETUID",      "SYS_CHROOT", NULL};

typedef struct caps {
    names_t bad, caps, missing_drop;
    int restricted;
} caps_t;

static void caps_visit(const json_t *c, const char *name, void *data)
{
    caps_t *cs = data;
    const json_t *caps = sc_get(c, "capabilities");
    if (cs->restricted) {
        int dropped_all = 0;
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(caps, "drop"), i, v)
            if (json_string_value(v) && !strcmp(json_string_value(v), "ALL")) dropped_all = 1;
        if (!dropped_all) names_add(&cs->missing_drop, name);
    }
    int bad = 0;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(caps, "add"), i, v)
    {
        const char *cap = json_string_value(v);
        if (!cap) continue;
        int ok = 0;
        if (cs->restricted) ok = !strcmp(cap, "NET_BIND_SERVICE");
        else
            for (size_t k = 0; baseline_caps[k]; k++) ok |= !strcmp(cap, baseline_caps[k]);
        if (!ok) {
            bad = 1;
            names_add_set(&cs->caps, cap);
        }
    }
    if (bad) names_add(&cs->bad, name);
}

static void check_capabilities(result_t *r, const json_t *spec, int restricted)
{
    caps_t cs = {.restricted = restricted};
    visit(spec, caps_visit, &cs);
    strbuf_t d = {0};
    if (cs.missing_drop.n) {
        containers_phrase(&d, &cs.missing_drop);
        strbuf_add(&d, " must set securityContext.capabilities.drop=[\"ALL\"]");
    }
    if (cs.bad.n) {
        if (d.len) strbuf_add(&d, "; ");
        containers_phrase(&d, &cs.bad);
        strbuf_add(&d, " must not include ");
        join_quote(&d, &cs.caps);
        strbuf_add(&d, " in securityContext.capabilities.add");
    }
    if (d.len)
        violation(r, restricted ? "unrestricted capabilities" : "non-default capabilities", d.p);
    strbuf_free(&d);
}

static void check_host_namespaces(result_t *r, const json_t *meta, const json_t *spec)
{
    names_t set = {0};
    if (json_is_true(json_object_get(spec, "hostIPC"))) names_add_set(&set, "hostIPC");
    if (json_is_true(json_object_get(spec, "hostNetwork"))) names_add_set(&set, "hostNetwork");
    if (json_is_true(json_object_get(spec, "hostPID"))) names_add_set(&set, "hostPID");
    if (!set.n) return;
    strbuf_t d = {0};
    join(&d, &set, ", ");
    violation(r, "host namespaces", d.p);
    strbuf_free(&d);
}

static void check_host_path_volumes(result_t *r, const json_t *meta, const json_t *spec)
{
    names_t bad = {0};
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(spec, "volumes"), i, v)
        if (json_object_get(v, "hostPath")) names_add(&bad, json_string_value(json_object_get(v, "name")));
    if (!bad.n) return;
    strbuf_t d = {0};
    strbuf_add(&d, plural("volume ", "volumes ", bad.n));
    join_quote(&d, &bad);
    violation(r, "hostPath volumes", d.p);
    strbuf_free(&d);
}

typedef struct ports {
    names_t bad, ports;
    char buf[MAX_NAMES][12];
    size_t nbuf;
} ports_t;

static void ports_visit(const json_t *c, const char *name, void *data)
{
    ports_t *p = data;
    int bad = 0;
    size_t i;
    json_t *port;
    json_array_foreach(json_object_get(c, "ports"), i, port)
    {
        json_int_t hp = json_integer_value(json_object_get(port, "hostPort"));
        if (!hp) continue;
        bad = 1;
        if (p->nbuf == MAX_NAMES) continue;
        snprintf(p->buf[p->nbuf], sizeof p->buf[0], "%lld", (long long)hp);
        names_add_set(&p->ports, p->buf[p->nbuf++]);
    }
    if (bad) names_add(&p->bad, name);
}

static void check_host_ports(result_t *r, const json_t *meta, const json_t *spec)
{
    ports_t *p = calloc(1, sizeof *p);
    if (!p) return;
    visit(spec, ports_visit, p);
    if (p->bad.n) {
        strbuf_t d = {0};
        containers_phrase(&d, &p->bad);
        strbuf_add(&d, plural(" uses ", " use ", p->bad.n));
        strbuf_add(&d, plural("hostPort ", "hostPorts ", p->ports.n));
        join(&d, &p->ports, ", ");
        violation(r, "hostPort", d.p);
        strbuf_free(&d);
    }
    free(p);
}

static void priv_visit(const json_t *c, const char *name, void *data)
{
    if (json_is_true(sc_get(c, "privileged"))) names_add(data, name);
}

static void check_privileged(result_t *r, const json_t *meta, const json_t *spec)
{
    names_t bad = {0};
    visit(spec, priv_visit, &bad);
    if (!bad.n) return;
    strbuf_t d = {0};
    containers_phrase(&d, &bad);
    strbuf_add(&d, " must not set securityContext.privileged=true");
    violation(r, "privileged", d.p);
    strbuf_free(&d);
}

typedef struct pm {
    names_t bad, types;
} pm_t;

static void pm_visit(const json_t *c, const char *name, void *data)
{
    pm_t *p = data;
    const char *t = json_string_value(sc_get(c, "procMount"));
    if (!t || !strcmp(t, "Default")) return;
    names_add(&p->bad, name);
    names_add_set(&p->types, t);
}

static void check_proc_mount(result_t *r, const json_t *meta, const json_t *spec)
{
    /* a pod in its own user namespace may unmask /proc (KEP-127) */
    if (json_is_false(json_object_get(spec, "hostUsers"))) return;
    pm_t p = {{{0}, 0}, {{0}, 0}};
    visit(spec, pm_visit, &p);
    if (!p.bad.n) return;
    strbuf_t d = {0};
    containers_phrase(&d, &p.bad);
    strbuf_add(&d, " must not set securityContext.procMount to ");
    join_quote(&d, &p.types);
    violation(r, "procMount", d.p);
    strbuf_free(&d);
}

static const char *const safe_volume_types[] = {"configMap", "csi", "downwardAPI", "emptyDir",
                                                "ephemeral", "persistentVolumeClaim",
                                                "projected", "secret", NULL};

static void check_restricted_volumes(result_t *r, const json_t *meta, const json_t *spec)
{
    names_t bad = {0}, types = {0};
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(spec, "volumes"), i, v)
    {
        const char *k;
        json_t *src;
        const char *type = NULL;
        int safe = 0;
        json_object_foreach(v, k, src)
        {
            if (!strcmp(k, "name")) continue;
            type = k;
            for (size_t t = 0; safe_volume_types[t]; t++) safe |= !strcmp(k, safe_volume_types[t]);
        }
        if (safe) continue;
        names_add(&bad, json_string_value(json_object_get(v, "name")));
        names_add_set(&types, type ? type : "unknown");
    }
    if (!bad.n) return;
    strbuf_t d = {0};
    strbuf_add(&d, plural("volume ", "volumes ", bad.n));
    join_quote(&d, &bad);
    strbuf_add(&d, plural(" uses ", " use ", bad.n));
    strbuf_add(&d, plural("restricted volume type ", "restricted volume types ", types.n));
    join_quote(&d, &types);
    violation(r, "restricted volume types", d.p);
    strbuf_free(&d);
}

typedef struct setters {
    names_t explicit_bad, implicit_bad, values;
    int pod_ok;
    const char *field;
} setters_t;

static void nonroot_visit(const json_t *c, const char *name, void *data)
{
    setters_t *s = data;
    const json_t *v = sc_get(c, "runAsNonRoot");
    if (json_is_boolean(v)) {
        if (!json_is_true(v)) names_add(&s->explicit_bad, name);
    } else if (!s->pod_ok) {
        names_add(&s->implicit_bad, name);
    }
}

/* "pod and containers \"a\"" from the bad setters */
static void setters_phrase(strbuf_t *d, int pod_bad, const names_t *containers)
{
    if (pod_bad) strbuf_add(d, "pod");
    if (containers->n) {
        if (pod_bad) strbuf_add(d, " and ");
        containers_phrase(d, containers);
    }
}

static void check_run_as_non_root(result_t *r, const json_t *meta, const json_t *spec)
{
    if (json_is_false(json_object_get(spec, "hostUsers"))) return;
    const json_t *pv = json_object_get(json_object_get(spec, "securityContext"), "runAsNonRoot");
    setters_t s = {.pod_ok = json_is_true(pv)};
    int pod_bad = json_is_false(pv);
    visit(spec, nonroot_visit, &s);
    strbuf_t d = {0};
    if (pod_bad || s.explicit_bad.n) {
        setters_phrase(&d, pod_bad, &s.explicit_bad);
        strbuf_add(&d, " must not set securityContext.runAsNonRoot=false");
    } else if (s.implicit_bad.n) {
        strbuf_add(&d, "pod or ");
        containers_phrase(&d, &s.implicit_bad);
        strbuf_add(&d, " must set securityContext.runAsNonRoot=true");
    }
    if (d.len) violation(r, "runAsNonRoot != true", d.p);
    strbuf_free(&d);
}

static void user_visit(const json_t *c, const char *name, void *data)
{
    const json_t *v = sc_get(c, "runAsUser");
    if (json_is_integer(v) && json_integer_value(v) == 0) names_add(data, name);
}

static void check_run_as_user(result_t *r, const json_t *meta, const json_t *spec)
{
    if (json_is_false(json_object_get(spec, "hostUsers"))) return;
    const json_t *pv = json_object_get(json_object_get(spec, "securityContext"), "runAsUser");
    int pod_bad = json_is_integer(pv) && json_integer_value(pv) == 0;
    names_t bad = {0};
    visit(spec, user_visit, &bad);
    if (!pod_bad && !bad.n) return;
    strbuf_t d = {0};
    setters_phrase(&d, pod_bad, &bad);
    strbuf_add(&d, " must not set runAsUser=0");
    violation(r, "runAsUser=0", d.p);
    strbuf_free(&d);
}

typedef struct selinux {
    names_t bad, types;
    int user, role;
} selinux_t;

static int selinux_ok(selinux_t *s, const json_t *opts)
{
    static const char *const types[] = {"", "container_t", "container_init_t", "container_kvm_t",
                                        NULL};
    int ok = 1;
    const char *t = json_string_value(json_object_get(opts, "type"));
    int known = 0;
    for (size_t i = 0; types[i]; i++) known |= !strcmp(t ? t : "", types[i]);
    if (!known) {
        ok = 0;
        names_add_set(&s->types, t);
    }
    const char *u = json_string_value(json_object_get(opts, "user"));
    const char *ro = json_string_value(json_object_get(opts, "role"));
    if (u && *u) ok = 0, s->user = 1;
    if (ro && *ro) ok = 0, s->role = 1;
    return ok;
}

static void selinux_visit(const json_t *c, const char *name, void *data)
{
    const json_t *opts = sc_get(c, "seLinuxOptions");
    if (json_is_object(opts) && !selinux_ok(data, opts)) names_add(&((selinux_t *)data)->bad, name);
}

static void check_selinux(result_t *r, const json_t *meta, const json_t *spec)
{
    selinux_t s;
    memset(&s, 0, sizeof s);
    const json_t *po = json_object_get(json_object_get(spec, "securityContext"), "seLinuxOptions");
    int pod_bad = json_is_object(po) && !selinux_ok(&s, po);
    visit(spec, selinux_visit, &s);
    if (!pod_bad && !s.bad.n) return;
    strbuf_t d = {0};
    setters_phrase(&d, pod_bad, &s.bad);
    strbuf_add(&d, " set forbidden securityContext.seLinuxOptions: ");
    int parts = 0;
    if (s.types.n) {
        strbuf_add(&d, plural("type ", "types ", s.types.n));
        join_quote(&d, &s.types);
        parts++;
    }
    if (s.user) {
        strbuf_add(&d, parts++ ? "; user may not be set" : "user may not be set");
    }
    if (s.role) {
        strbuf_add(&d, parts++ ? "; role may not be set" : "role may not be set");
    }
    violation(r, "seLinuxOptions", d.p);
    strbuf_free(&d);
}

static int seccomp_valid(const char *t)
{
    return t && (!strcmp(t, "RuntimeDefault") || !strcmp(t, "Localhost"));
}

static void seccomp_visit(const json_t *c, const char *name, void *data)
{
    setters_t *s = data;
    const json_t *prof = sc_get(c, "seccompProfile");
    if (json_is_object(prof)) {
        const char *t = json_string_value(json_object_get(prof, "type"));
        if (!seccomp_valid(t)) {
            names_add(&s->explicit_bad, name);
            names_add_set(&s->values, t);
        }
    } else if (!s->pod_ok) {
        names_add(&s->implicit_bad, name);
    }
}

static void check_seccomp(result_t *r, const json_t *meta, const json_t *spec, int restricted)
{
    const json_t *pp = json_object_get(json_object_get(spec, "securityContext"), "seccompProfile");
    setters_t s;
    memset(&s, 0, sizeof s);
    int pod_bad = 0;
    if (json_is_object(pp)) {
        const char *t = json_string_value(json_object_get(pp, "type"));
        if (seccomp_valid(t)) {
            s.pod_ok = 1;
        } else {
            pod_bad = 1;
            names_add_set(&s.values, t);
        }
    }
    visit(spec, seccomp_visit, &s);
    strbuf_t d = {0};
    if (pod_bad || s.explicit_bad.n) {
        setters_phrase(&d, pod_bad, &s.explicit_bad);
        strbuf_add(&d, " must not set securityContext.seccompProfile.type to ");
        join_quote(&d, &s.values);
    } else if (restricted && s.implicit_bad.n) {
        strbuf_add(&d, "pod or ");
        containers_phrase(&d, &s.implicit_bad);
        strbuf_add(&d,
                   " must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"");
    }
    if (d.len) violation(r, "seccompProfile", d.p);
    strbuf_free(&d);
}

/* the namespaced, safe sysctls of the latest policy version */
static const char *const safe_sysctls[] = {
    "kernel.shm_rmid_forced",        "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",       "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",   "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",  "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",             "net.ipv4.tcp_wmem",
    NULL};

static void check_sysctls(result_t *r, const json_t *meta, const json_t *spec)
{
    names_t bad = {0};
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(json_object_get(spec, "securityContext"), "sysctls"), i, s)
    {
        const char *n = json_string_value(json_object_get(s, "name"));
        int ok = 0;
        for (size_t k = 0; n && safe_sysctls[k]; k++) ok |= !strcmp(n, safe_sysctls[k]);
        if (!ok) names_add(&bad, n);
    }
    if (!bad.n) return;
    strbuf_t d = {0};
    join(&d, &bad, ", ");
    violation(r, "forbidden sysctls", d.p);
    strbuf_free(&d);
}

static void hp_visit(const json_t *c, const char *name, void *data)
{
    if (json_is_true(json_object_get(sc_get(c, "windowsOptions"), "hostProcess")))
        names_add(data, name);
}

static void check_windows_host_process(result_t *r, const json_t *meta, const json_t *spec)
{
    const json_t *wo = json_object_get(json_object_get(spec, "securityContext"), "windowsOptions");
    int pod_bad = json_is_true(json_object_get(wo, "hostProcess"));
    names_t bad = {0};
    visit(spec, hp_visit, &bad);
    if (!pod_bad && !bad.n) return;
    strbuf_t d = {0};
    setters_phrase(&d, pod_bad, &bad);
    strbuf_add(&d, " must not set securityContext.windowsOptions.hostProcess=true");
    violation(r, "hostProcess", d.p);
    strbuf_free(&d);
}

/* ---- levels --------------------------------------------------------------------- */

int psa_parse_level(const char *s)
{
    if (!s) return -1;
    if (!strcmp(s, "privileged")) return PSA_PRIVILEGED;
    if (!strcmp(s, "baseline")) return PSA_BASELINE;
    if (!strcmp(s, "restricted")) return PSA_RESTRICTED;
    return -1;
}

const char *psa_level_name(int level)
{
    return level == PSA_RESTRICTED ? "restricted" : level == PSA_BASELINE ? "baseline" : "privileged";
}

char *psa_violations(int level, const json_t *meta, const json_t *spec)
{
    if (level <= PSA_PRIVILEGED) return NULL;
    int restricted = level == PSA_RESTRICTED;
    result_t r;
    memset(&r, 0, sizeof r);
    /* by check ID, as Kubernetes reports them; at restricted the baseline
     * checks that a restricted one covers (capabilities, hostPath,
     * seccomp) give way to it */
    if (restricted) check_allow_privilege_escalation(&r, meta, spec);
    check_apparmor(&r, meta, spec);
    check_capabilities(&r, spec, restricted);
    check_host_namespaces(&r, meta, spec);
    if (!restricted) check_host_path_volumes(&r, meta, spec);
    check_host_ports(&r, meta, spec);
    check_privileged(&r, meta, spec);
    check_proc_mount(&r, meta, spec);
    if (restricted) {
        check_restricted_volumes(&r, meta, spec);
        check_run_as_non_root(&r, meta, spec);
        check_run_as_user(&r, meta, spec);
    }
    check_selinux(&r, meta, spec);
    check_seccomp(&r, meta, spec, restricted);
    check_sysctls(&r, meta, spec);
    check_windows_host_process(&r, meta, spec);
    if (!r.n || r.out.failed) {
        strbuf_free(&r.out);
        return NULL;
    }
    return r.out.p;
}
