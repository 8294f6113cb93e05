/* core/plugin/loader.c - placeholder, being written. */
