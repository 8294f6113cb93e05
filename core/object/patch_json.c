/* core/object/patch_json.c - placeholder, being written. */
