/* core/object/schema_blob.S - embeds the generated compact schema set
 * (core/object/kinds/schemas.json) into the binary as a NUL-terminated string. */
    .section .rodata
    .global skiff_schemas_json
    .type skiff_schemas_json, @object
    .balign 16
skiff_schemas_json:
    .incbin SCHEMAS_JSON_PATH
    .byte 0
    .size skiff_schemas_json, . - skiff_schemas_json
    .section .note.GNU-stack,"",@progbits
