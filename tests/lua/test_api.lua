-- tests/lua/test_api.lua - skiff.get/list/create/update/patch/apply/delete
-- against a real API server: each waits for its answer inside the callback
-- and errors come back as nil, {code, reason, message}.
local t = require "tap"

local function cm(name, data, labels)
  return { apiVersion = "v1", kind = "ConfigMap",
           metadata = { name = name, namespace = "default", labels = labels },
           data = data }
end

local function run()
  local created, err = skiff.create(cm("one", { a = "1" }, { app = "t" }))
  t.ok(created and created.metadata.uid, "create returns the stored object", err and err.message)
  t.ok(math.type(tonumber(created.metadata.resourceVersion)) == "integer", "with a resourceVersion")

  local got = skiff.get("ConfigMap", "default", "one")
  t.is(got and got.data, { a = "1" }, "get by namespace and name")
  got = skiff.get("configmaps", "default/one")
  t.is(got and got.metadata.name, "one", "get by plural and key")
  got = skiff.get("v1/ConfigMap", "default", "one")
  t.is(got and got.metadata.name, "one", "get by apiVersion/Kind")

  local none, nerr = skiff.get("ConfigMap", "default", "missing")
  t.ok(none == nil and nerr.code == 404 and nerr.reason == "NotFound", "a missing object is nil, 404 NotFound")
  t.like(nerr.message, 'configmaps "missing" not found', "with the server's message")

  local dup, derr = skiff.create(cm("one", {}))
  t.ok(dup == nil and derr.code == 409 and derr.reason == "AlreadyExists", "create of an existing name: 409 AlreadyExists")

  local stale = skiff.json.copy(created)
  created.data.a = "2"
  local upd, uerr = skiff.update(created)
  t.is(upd and upd.data.a, "2", "update", uerr and uerr.message)
  stale.data.a = "3"
  local _, cerr = skiff.update(stale)
  t.ok(cerr and cerr.code == 409 and cerr.reason == "Conflict", "update with an old resourceVersion: 409 Conflict")

  local patched = skiff.patch("ConfigMap", "default", "one", { data = { b = "x" } })
  t.is(patched and patched.data, { a = "2", b = "x" }, "merge patch from a table")
  patched = skiff.patch("ConfigMap", "default", "one", '[{"op":"remove","path":"/data/b"}]', { type = "json" })
  t.is(patched and patched.data, { a = "2" }, "JSON patch from a string")
  local _, perr = skiff.patch("ConfigMap", "default", "one", '{"data":', { type = "merge" })
  t.ok(perr and perr.code == 400, "a malformed patch: 400", perr and perr.message)

  skiff.create(cm("two", { a = "1" }, { app = "other" }))
  local items, meta = skiff.list("ConfigMap", { namespace = "default", labelSelector = "app=t" })
  t.is(#items, 1, "list with a label selector")
  t.ok(meta and meta.resourceVersion, "list returns the list's metadata")
  items = skiff.list("ConfigMap", { namespace = "default" })
  t.ok(#items >= 2, "list a namespace")

  -- apply: create, unchanged, configured
  local res, obj = skiff.apply(cm("three", { k = "v" }))
  t.is(res, "created", "apply creates")
  t.is(obj and obj.data, { k = "v" }, "and returns the object")
  res = skiff.apply(cm("three", { k = "v" }))
  t.is(res, "unchanged", "apply again: unchanged, nothing written")
  res, obj = skiff.apply(cm("three", { k = "w" }))
  t.is(res, "configured", "apply with a change: configured")
  t.is(obj and obj.data.k, "w", "the change is stored")

  local gone = skiff.delete("ConfigMap", "default", "three")
  t.ok(gone == true, "delete returns true")
  local _, gerr = skiff.delete("ConfigMap", "default", "three")
  t.ok(gerr and gerr.code == 404, "delete of a missing object: 404")

  local _, kerr = skiff.get("Gizmo", "default", "x")
  t.ok(kerr and kerr.code == 404 and kerr.message:find("Gizmo", 1, true), "an unknown kind: 404 naming it")
  local _, verr = skiff.create({ apiVersion = "v1", kind = "ConfigMap", metadata = { name = "Bad_Name" } })
  t.ok(verr and verr.code == 422 and verr.reason == "Invalid", "an invalid object: 422 Invalid", verr and verr.message)

  -- calls that wait need a callback's coroutine
  local co = coroutine.wrap(function() return pcall(skiff.get, "ConfigMap", "default", "one") end)
  local okk, msg = co()
  t.ok(not okk and msg:find("call it from a callback", 1, true), "inside the script's own coroutine: refused", msg)

  -- cluster-scoped
  local ns = skiff.create({ apiVersion = "v1", kind = "Namespace", metadata = { name = "lua-ns" } })
  t.is(ns and ns.metadata.name, "lua-ns", "create a cluster-scoped object")
  t.is(skiff.get("Namespace", "lua-ns") and "found", "found", "get a cluster-scoped object by name")

  -- sleep lets the loop run
  local before = skiff.now()
  skiff.sleep(0.05)
  t.ok(skiff.now() - before >= 0.04, "sleep waits")
  t.done()
end

return skiff.plugin{ name = "test-api", kind = "controller", start = run }
