/* skiff/errors.h - error codes shared by the core and every plugin.
 *
 * Functions in the SDK return 0 on success or a negative SKIFF_E* code.
 * skiff_strerror() names a code; the core turns codes into Kubernetes
 * Status objects where a user sees them. */
#ifndef SKIFF_ERRORS_H
#define SKIFF_ERRORS_H

#ifdef __cplusplus
extern "C" {
#endif

enum {
    SKIFF_OK = 0,
    SKIFF_EINVAL = -1,     /* bad argument or malformed input */
    SKIFF_ENOENT = -2,     /* key or object does not exist */
    SKIFF_EEXIST = -3,     /* key or object already exists */
    SKIFF_ECONFLICT = -4,  /* revision given does not match the current one */
    SKIFF_ECOMPACTED = -5, /* requested revision was compacted away */
    SKIFF_EIO = -6,        /* storage or network failure */
    SKIFF_ENOMEM = -7,
    SKIFF_ECLOSED = -8,    /* the store, watch or connection was closed */
    SKIFF_EABI = -9,       /* plugin built against another SDK ABI */
    SKIFF_ENOTSUP = -10,   /* operation not supported by this plugin */
    SKIFF_ETOOLARGE = -11, /* value or request larger than allowed */
    SKIFF_ETIMEDOUT = -12,
};

/* Static string naming an error code; never NULL. */
static inline const char *skiff_strerror(int code)
{
    switch (code) {
    case SKIFF_OK: return "success";
    case SKIFF_EINVAL: return "invalid argument";
    case SKIFF_ENOENT: return "not found";
    case SKIFF_EEXIST: return "already exists";
    case SKIFF_ECONFLICT: return "revision conflict";
    case SKIFF_ECOMPACTED: return "revision compacted";
    case SKIFF_EIO: return "input/output error";
    case SKIFF_ENOMEM: return "out of memory";
    case SKIFF_ECLOSED: return "closed";
    case SKIFF_EABI: return "ABI version mismatch";
    case SKIFF_ENOTSUP: return "not supported";
    case SKIFF_ETOOLARGE: return "too large";
    case SKIFF_ETIMEDOUT: return "timed out";
    default: return "unknown error";
    }
}

#ifdef __cplusplus
}
#endif
#endif
