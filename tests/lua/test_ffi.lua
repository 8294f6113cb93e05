-- tests/lua/test_ffi.lua - skiff.ffi: Lua calls the C functions plugins
-- export (skiff/ffi.h) by name and through a loaded module, with every
-- supported type, and a bad call is a Lua error naming the argument,
-- never a crash. Uses plugins/examples/node-weight and the test plugin
-- tests/unit/plugins/ffi_exports.c.
local t = require "tap"

local function err_of(fn, ...)
  local okk, err = pcall(fn, ...)
  if okk then return nil end
  return tostring(err)
end

local function run()
  -- the worked example's function, by name and through a module
  local labels = { ["skiff.dev/weight"] = "42", zone = "a" }
  local w = skiff.ffi.call("node-weight", "label_weight", labels, "skiff.dev/weight")
  t.is(w, 42, "skiff.ffi.call runs a plugin's C function by name")
  t.ok(math.type(w) == "integer", "an int64 result is a Lua integer")

  local nw = skiff.ffi.load("node-weight")
  local weight = nw.label_weight(labels, "skiff.dev/weight")
  t.is(weight, 42, "a loaded module's functions are plain Lua functions")
  t.is(nw.parse_weight("7"), 7, "string argument")
  t.is(nw.parse_weight(nil), 0, "a string? argument takes nil")
  t.is(skiff.ffi.exports("node-weight"),
       { label_weight = "int64(json labels, string key)", parse_weight = "int64(string? value)" },
       "skiff.ffi.exports lists each function's signature")

  -- what a bad call says
  t.like(err_of(nw.label_weight, labels),
         "node-weight.label_weight takes 2 arguments (int64(json labels, string key)), got 1",
         "a wrong count is an error with the signature")
  t.like(err_of(nw.parse_weight, 12),
         "node-weight.parse_weight: argument 1 (value) must be string or nil, got integer",
         "a wrong type is an error naming the argument")
  t.like(err_of(nw.label_weight, { f = print }, "k"),
         "node-weight.label_weight: argument 1 is not a JSON value", "a json argument must be JSON")
  t.like(err_of(function() return nw.nope() end),
         'plugin node-weight exports no function "nope" (it exports: label_weight, parse_weight)',
         "a missing function names what the plugin exports")
  t.like(err_of(skiff.ffi.call, "node-weight", "nope"),
         'skiff.ffi.call: plugin node-weight exports no function "nope"', "the same by name")
  t.like(err_of(skiff.ffi.call, "no-such-plugin", "f"), "plugin no-such-plugin not found",
         "a missing plugin is an error")
  t.like(err_of(skiff.ffi.load, "storage-sqlite"),
         "plugin storage-sqlite exports no C functions", "so is a plugin without exports")
  local src = os.getenv("SKIFF_SRC_DIR") or "."
  t.like(err_of(skiff.ffi.load, src .. "/tests/bench/ffi_calls.lua"),
         "plugin ffi-calls is a Lua plugin: only C plugins export functions",
         "a Lua plugin exports no C functions")

  -- every type, through the test plugin
  local dir = os.getenv("SKIFF_BUILD_DIR")
  local x = skiff.ffi.load((dir or ".") .. "/tests/unit/plugins/.libs/ffi_exports.so")
  t.is(x.touch(), nil, "void: nothing")
  t.is(select("#", x.touch()), 0, "void returns no value at all")
  t.ok(x.calls_made() >= 2, "int32() result")
  t.is(x.negate(false), true, "bool")
  t.is(x.add32(40, 2), 42, "int32")
  t.is(x.add32(40.0, 2), 42, "a float with an integral value is an integer")
  t.like(err_of(x.add32, 1.5, 2), "argument 1 (a) must be int32, got the number 1.5",
         "a fraction is not an integer")
  t.like(err_of(x.add32, 2^40 // 1, 1), "is out of range for int32", "int32 range")
  t.is(x.mul64(1 << 31, 4), 1 << 33, "int64")
  local big = x.big(1 << 62)
  t.ok(math.type(big) == "float" and big == 2.0^63, "a uint64 above 2^63-1 is a float")
  t.like(err_of(x.big, -1), "-1 is out of range for uint64", "uint64 refuses negatives")
  t.is(x.mean(4, 10.0), 2.5, "double")
  t.is(x.mean(4, 10), 2.5, "an integer is a double")
  t.is(x.greet("world"), "hello, world", "string result (copied)")
  t.is(x.nothing(), nil, "a NULL string is nil")
  t.like(err_of(x.greet, "a\0b"), "holds a NUL byte; declare it bytes", "strings hold no NUL")
  t.is(x.json_sum({ a = 1, b = 20, c = 300 }, "a,c"), 301, "json argument")
  t.is(x.wrap({ 1, 2 }), { wrapped = { 1, 2 } }, "json result (a new reference, released)")
  t.is(x.wrap(nil), { wrapped = skiff.json.null }, "json? takes nil")
  t.is(x.count_zero_bytes("\0x\0"), 2, "bytes: a Lua string with NULs")
  t.is(x.mix(1, 20, 300, 0.5, true, "abcd"), 1325.5, "six arguments of six types")
  t.like(err_of(x.mix, 1, 20, 300, 0.5, 1, "abcd"), "argument 5 (e) must be bool, got integer",
         "bool takes booleans only")
  t.like(err_of(x.negate, {}), "argument 1 (b) must be bool, got table", "a table is named")
  t.done()
end

return skiff.plugin{ name = "test-ffi", kind = "controller", start = run }
