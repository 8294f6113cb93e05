/* core/object/patch_merge.c - placeholder, being written. */
