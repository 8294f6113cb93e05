-- tests/lua/test_json.lua - objects cross between JSON and Lua keeping
-- arrays and objects (empty ones too), integers and reals, and null; the
-- skiff.json helpers (copy, equal, contains) and the conditions helpers.
local t = require "tap"

local function run()
  local doc = '{"a":[],"b":{},"c":1,"d":1.5,"e":null,"f":[1,2,{"x":[]}],"g":true,"h":"caf\\u00e9","i":2.0}'
  local v = skiff.json.decode(doc)
  t.ok(skiff.json.is_array(v.a) and #v.a == 0, "an empty JSON array is an array")
  t.ok(not skiff.json.is_array(v.b), "an empty JSON object is an object")
  t.ok(math.type(v.c) == "integer", "an integer stays an integer")
  t.ok(math.type(v.d) == "float" and v.d == 1.5, "a real stays a real")
  t.ok(math.type(v.i) == "float", "2.0 stays a real")
  t.is(v.e, skiff.json.null, "null is skiff.json.null")
  t.is(v.h, "café", "strings are UTF-8")
  t.is(skiff.json.encode(v), '{"a":[],"b":{},"c":1,"d":1.5,"e":null,"f":[1,2,{"x":[]}],"g":true,"h":"café","i":2.0}',
       "encoding gives the same document back")

  -- tables made in Lua
  t.is(skiff.json.encode({ 1, 2, 3 }), "[1,2,3]", "a sequence is an array")
  t.is(skiff.json.encode({}), "{}", "an unmarked empty table is an object")
  t.is(skiff.json.encode(skiff.json.array()), "[]", "skiff.json.array() is an empty array")
  t.is(skiff.json.encode({ a = { b = skiff.json.array({ "x" }) } }), '{"a":{"b":["x"]}}', "nested")
  local okk, err = pcall(skiff.json.encode, { 1, 2, x = 3 })
  t.ok(not okk and err:find("not strings", 1, true), "a table mixing keys is refused", err)
  okk, err = pcall(skiff.json.encode, { f = print })
  t.ok(not okk and err:find("function", 1, true), "a function is refused", err)
  local cyc = {}
  cyc.self = cyc
  okk, err = pcall(skiff.json.encode, cyc)
  t.ok(not okk and err:find("cycle", 1, true), "a cycle is refused", err)
  local bad, derr = skiff.json.decode("{nope")
  t.ok(bad == nil and derr:find("invalid JSON", 1, true), "decode returns nil, err", derr)

  -- copy, equal, contains
  local c = skiff.json.copy(v)
  t.ok(c ~= v and c.f ~= v.f and skiff.json.equal(c, v), "copy is deep and equal")
  t.ok(skiff.json.is_array(c.a), "copy keeps the array mark")
  c.f[3].x[1] = "y"
  t.ok(not skiff.json.equal(c, v), "a change deep inside makes them differ")
  t.ok(skiff.json.contains({ c = 1, f = { 1, 2, { x = skiff.json.array() } } }, v),
       "contains: the fields named are the same")
  t.ok(not skiff.json.contains({ c = 2 }, v), "contains: a different value")
  t.ok(not skiff.json.contains({ f = { 1, 2 } }, v), "contains: arrays must have the same length")
  t.ok(skiff.json.contains({ c = 1.0 }, v), "contains: 1.0 equals 1")

  -- conditions
  local obj = { metadata = { name = "x", generation = 3 } }
  t.ok(skiff.conditions.set(obj, "Ready", "False", "Waiting", "not yet"), "a new condition is a change")
  local first = skiff.conditions.get(obj, "Ready")
  t.is(first.observedGeneration, 3, "observedGeneration follows metadata.generation")
  t.ok(first.lastTransitionTime:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$"), "lastTransitionTime is RFC 3339")
  first.lastTransitionTime = "2020-01-01T00:00:00Z"
  t.ok(not skiff.conditions.set(obj, "Ready", "False", "Waiting", "not yet"), "the same again is no change")
  t.ok(skiff.conditions.set(obj, "Ready", "False", "Still", "not yet"), "a new reason is a change")
  t.is(skiff.conditions.get(obj, "Ready").lastTransitionTime, "2020-01-01T00:00:00Z",
       "lastTransitionTime stays while the status stays")
  skiff.conditions.set(obj, "Ready", "True", "Up", "")
  t.ok(skiff.conditions.get(obj, "Ready").lastTransitionTime ~= "2020-01-01T00:00:00Z",
       "lastTransitionTime moves with the status")
  t.ok(skiff.conditions.is_true(obj, "Ready"), "is_true")
  t.is(skiff.json.encode(obj.status.conditions):sub(1, 1), "[", "conditions encode as an array")
  okk, err = pcall(skiff.conditions.set, obj, "Ready", "yes")
  t.ok(not okk and err:find('"True"', 1, true), "a bad status is refused", err)
  t.ok(skiff.conditions.remove(obj, "Ready") and skiff.conditions.get(obj, "Ready") == nil, "remove")

  -- misc
  t.is(skiff.parse_time("2026-01-02T03:04:05Z"), 1767323045.0, "parse_time")
  t.is(skiff.timestamp(1767323045), "2026-01-02T03:04:05Z", "timestamp")
  local ref = skiff.owner_ref({ apiVersion = "v1", kind = "ConfigMap", metadata = { name = "a", uid = "u-1" } })
  t.is(ref, { apiVersion = "v1", kind = "ConfigMap", name = "a", uid = "u-1", controller = true,
              blockOwnerDeletion = true }, "owner_ref")
  okk, err = pcall(skiff.owner_ref, { kind = "ConfigMap", metadata = { name = "a" } })
  t.ok(not okk and err:find("uid", 1, true), "owner_ref needs a uid", err)
  t.done()
end

return skiff.plugin{ name = "test-json", kind = "controller", start = run }
