/* core/object/patch_strategic.c - placeholder, being written. */
