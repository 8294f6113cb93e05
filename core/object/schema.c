/* core/object/schema.c - placeholder, being written. */
