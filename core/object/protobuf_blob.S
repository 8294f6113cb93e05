/* core/object/protobuf_blob.S - embeds the generated protobuf field table
 * (core/object/kinds/protobuf.json) into the binary as a NUL-terminated string. */
    .section .rodata
    .global skiff_protobuf_json
    .type skiff_protobuf_json, @object
    .balign 16
skiff_protobuf_json:
    .incbin PROTOBUF_JSON_PATH
    .byte 0
    .size skiff_protobuf_json, . - skiff_protobuf_json
    .section .note.GNU-stack,"",@progbits
