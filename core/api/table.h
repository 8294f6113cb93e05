/* core/api/table.h - placeholder. */
