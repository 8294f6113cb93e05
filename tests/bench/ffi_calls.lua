-- tests/bench/ffi_calls.lua - an empty Lua plugin: tests/bench/step_bench
-- times raw calls (a plain Lua function, skiff.ffi.call, a loaded
-- module's function) inside its Lua state.
return skiff.plugin{ name = "ffi-calls", kind = "controller" }
