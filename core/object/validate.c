/* core/object/validate.c - placeholder, being written. */
