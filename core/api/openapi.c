/* core/api/openapi.c - placeholder, being written. */
