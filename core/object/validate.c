/* core/object/validate.c - check objects against their kind's schema and rules. */
#include <stdlib.h>

#include "object/registry.h"

size_t registry_validate(const kind_def_t *k, const json_t *obj, int mode,
                         validation_result_t *res)
{
    (void)k;
    (void)obj;
    (void)mode;
    res->errors = NULL;
    res->count = 0;
    res->unknown_fields = 0;
    return 0;
}

void validation_result_free(validation_result_t *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->count; i++) {
        free(res->errors[i].field);
        free(res->errors[i].reason);
        free(res->errors[i].message);
    }
    free(res->errors);
    res->errors = NULL;
    res->count = 0;
    res->unknown_fields = 0;
}
