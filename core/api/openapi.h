/* core/api/openapi.h - placeholder. */
