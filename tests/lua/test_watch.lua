-- tests/lua/test_watch.lua - skiff.watch: reconciles per key from the
-- shared informers, owned objects mapped to their owner, an error retried
-- with back-off, skiff.requeue, skiff.cached; timers.
local t = require "tap"

local seen = {}      -- key -> number of reconciles
local last = {}      -- key -> last object (nil when deleted)
local fail_left = 2  -- reconciles of "flaky" that fail first
local requeued = 0

local function reconcile(obj, key)
  seen[key.key] = (seen[key.key] or 0) + 1
  last[key.key] = obj or false
  if key.name == "flaky" and fail_left > 0 then
    fail_left = fail_left - 1
    error("flaky fails on purpose")
  end
  if key.name == "again" and requeued < 2 then
    requeued = requeued + 1
    skiff.requeue(0.05)
  end
  if obj and key.name == "owner" then
    -- an owned Secret, put back when deleted
    skiff.apply({ apiVersion = "v1", kind = "Secret",
                  metadata = { name = "owned", namespace = key.namespace,
                               ownerReferences = { skiff.owner_ref(obj) } },
                  data = { x = "MQ==" } })
  end
end

local function cm(name, labels)
  return { apiVersion = "v1", kind = "ConfigMap",
           metadata = { name = name, namespace = "default", labels = labels or { app = "w" } } }
end

local function run()
  skiff.watch("ConfigMap", { namespace = "default", labelSelector = "app=w", owns = { "Secret" } },
              reconcile)
  skiff.create(cm("plain"))
  t.ok(t.wait(function() return seen["default/plain"] end), "a created object is reconciled")
  t.is(last["default/plain"].metadata.name, "plain", "fn gets the object as a table")
  skiff.create(cm("ignored", { app = "other" }))
  skiff.create(cm("flaky"))
  t.ok(t.wait(function() return (seen["default/flaky"] or 0) >= 3 end),
       "a failing reconcile is retried until it succeeds")
  t.is(seen["default/ignored"], nil, "the label selector keeps other objects out")

  skiff.create(cm("again"))
  t.ok(t.wait(function() return (seen["default/again"] or 0) >= 3 end), "skiff.requeue runs it again")

  skiff.create(cm("owner"))
  local sec = t.wait(function() return skiff.get("Secret", "default", "owned") end)
  t.ok(sec and sec.metadata.ownerReferences[1].name == "owner", "the reconcile made an owned object")
  t.ok(t.wait(function() return skiff.cached("Secret", "default", "owned") end),
       "skiff.cached reads an owned kind from the informer")
  local before = seen["default/owner"]
  skiff.delete("Secret", "default", "owned")
  t.ok(t.wait(function() return seen["default/owner"] > before and skiff.get("Secret", "default", "owned") end),
       "deleting the owned object reconciles the owner, which puts it back")

  skiff.delete("ConfigMap", "default", "plain")
  t.ok(t.wait(function() return last["default/plain"] == false end), "a deleted object is reconciled with nil")

  -- apply answers from the cache of an owned kind (every Secret of the
  -- namespace is cached, owned or not)
  local cur = skiff.cached("Secret", "default", "owned")
  local want = { apiVersion = "v1", kind = "Secret",
                 metadata = { name = "free", namespace = "default" }, data = { x = "MQ==" } }
  t.is(({ skiff.apply(want) })[1], "created", "apply of a new object: created")
  t.ok(t.wait(function() return skiff.cached("Secret", "default", "free") end), "it reaches the cache")
  t.is(skiff.apply(want), "unchanged", "apply of what the cache holds: unchanged")
  want.data.x = "Mg=="
  local res, obj = skiff.apply(want)
  t.is(res, "configured", "apply of a change: configured")
  t.is(obj and obj.data.x, "Mg==", "and written")
  want.type = "Opaque"
  want.data = { x = "Mg==", y = "Mw==" }
  t.is(({ skiff.apply(want) })[1], "configured", "a new key is a change")
  t.ok(t.wait(function()
    local c = skiff.cached("Secret", "default", "free")
    return c and c.data.y == "Mw=="
  end), "the cache catches up")
  t.is(skiff.apply(want), "unchanged", "and then it is unchanged")
  t.ok(cur and cur.metadata.uid, "skiff.cached gives the whole object")

  local okk, err = pcall(skiff.cached, "Pod", "default", "x")
  t.ok(not okk and err:find("no watch", 1, true), "skiff.cached of a kind not watched is an error", err)

  -- timers
  local fired, ticks = false, 0
  skiff.timer(0.02, function() fired = true end)
  local h
  h = skiff.every(0.02, function()
    ticks = ticks + 1
    if ticks == 3 then h.stop() end
  end)
  t.ok(t.wait(function() return fired end), "skiff.timer fires once")
  t.wait(function() return ticks >= 3 end)
  skiff.sleep(0.1)
  t.is(ticks, 3, "skiff.every repeats until stopped")
  t.done()
end

return skiff.plugin{ name = "test-watch", kind = "controller", start = run }
