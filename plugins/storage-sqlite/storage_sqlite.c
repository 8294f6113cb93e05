/* plugins/storage-sqlite/storage_sqlite.c - placeholder, being written. */
