/* plugins/examples/node-weight/node_weight.c - an example step plugin for
 * the default scheduler, and the C half of the libffi worked example.
 *
 * It lends two steps (skiff/scheduler.h), taken by name in
 * scheduler-default's settings:
 *   node-weight/NodeWeight   score: prefers nodes by the integer in their
 *                            label skiff.dev/weight (absent: 0), scaled so
 *                            the heaviest feasible node scores 100;
 *   node-weight/NotDraining  filter: keeps new pods off nodes annotated
 *                            skiff.dev/draining=true.
 * and two C functions for Lua (skiff/ffi.h), the same score as calls:
 *   int64 label_weight(json labels, string key)
 *   int64 parse_weight(string? value)
 * which a Lua score step calls through skiff.ffi. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <skiff/ffi.h>
#include <skiff/plugin.h>
#include <skiff/scheduler.h>

#define WEIGHT_LABEL "skiff.dev/weight"
#define DRAINING_ANNOTATION "skiff.dev/draining"
#define MAX_WEIGHT 1000000

/* A label value as a weight, 0..MAX_WEIGHT; 0 when it is not a
 * non-negative integer. */
static int64_t parse_weight(const char *v)
{
    if (!v || !*v) return 0;
    char *end;
    errno = 0;
    long long w = strtoll(v, &end, 10);
    if (*end || errno || w < 0) return 0;
    return w > MAX_WEIGHT ? MAX_WEIGHT : w;
}

/* The weight in labels[key]; 0 when absent. */
static int64_t label_weight(const json_t *labels, const char *key)
{
    return parse_weight(json_string_value(json_object_get(labels, key)));
}

static int64_t weight_score(void *data, const skiff_sched_cycle_t *cy, void *state,
                            const skiff_sched_node_t *node)
{
    return label_weight(node->labels, WEIGHT_LABEL);
}

/* As kube-scheduler's DefaultNormalizeScore: the highest becomes the maximum. */
static void weight_normalize(void *data, const skiff_sched_cycle_t *cy, void *state,
                             const skiff_sched_node_t *const *nodes, int64_t *scores, size_t n)
{
    int64_t max = 0;
    for (size_t i = 0; i < n; i++)
        if (scores[i] > max) max = scores[i];
    for (size_t i = 0; i < n; i++) scores[i] = max ? scores[i] * SKIFF_SCHED_MAX_SCORE / max : 0;
}

static int not_draining(void *data, const skiff_sched_cycle_t *cy, void *state,
                        const skiff_sched_node_t *node, skiff_sched_reasons_t *why)
{
    const json_t *ann = json_object_get(json_object_get(node->obj, "metadata"), "annotations");
    const char *v = json_string_value(json_object_get(ann, DRAINING_ANNOTATION));
    if (!v || strcmp(v, "true") != 0) return SKIFF_SCHED_OK;
    /* evicting pods does not undrain a node: preemption cannot help */
    skiff_sched_reason(why, "node(s) were draining");
    return SKIFF_SCHED_UNRESOLVABLE;
}

static const skiff_sched_step_t steps[] = {
    {.name = "NodeWeight", .score = weight_score, .normalize = weight_normalize},
    {.name = "NotDraining", .filter = not_draining},
};

static const skiff_sched_step_table_t step_table = {
    .abi_version = SKIFF_SCHED_STEP_ABI,
    .steps = steps,
    .n_steps = sizeof steps / sizeof steps[0],
};

static const skiff_ffi_export_t exports[] = {
    {"label_weight", "int64(json labels, string key)", SKIFF_FFI_FN(label_weight),
     "the integer in labels[key], 0 when absent"},
    {"parse_weight", "int64(string? value)", SKIFF_FFI_FN(parse_weight),
     "a label value as a weight"},
    {NULL},
};

const skiff_ffi_table_t skiff_ffi_exports = {SKIFF_FFI_ABI, exports};

const skiff_plugin_t skiff_plugin = {
    .abi_version = SKIFF_ABI_VERSION,
    .name = "node-weight",
    .version = "1.0",
    .kind = SKIFF_PLUGIN_SCHEDULER,
    .description = "scheduler steps: NodeWeight (score by the skiff.dev/weight label) and "
                   "NotDraining (filter on the skiff.dev/draining annotation)",
    .vtable = &step_table,
};
