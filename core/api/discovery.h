/* core/api/discovery.h - placeholder. */
