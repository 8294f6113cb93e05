-- sdk/lua/skiff.lua - the Lua side of the skiff SDK. The Lua host runs it
-- once per plugin with the table of C functions (get, watch, json, ...)
-- and it adds what is better written in Lua: skiff.plugin{} (the
-- descriptor a script returns) and the status conditions helpers. The
-- whole `skiff` table is documented in docs/plugins.md.
local skiff = ...

local kinds = { controller = true, scheduler = true, admission = true }

-- skiff.plugin{name=, kind=, version=, description=, settings=, start=,
-- stop=, ...}: checks the descriptor and returns it; a script ends with
-- `return skiff.plugin{...}`.
function skiff.plugin(t)
  if type(t) ~= "table" then
    error("skiff.plugin takes a table: skiff.plugin{name = ..., kind = ...}", 2)
  end
  if type(t.name) ~= "string" or not t.name:match("^[a-z0-9][a-z0-9.-]*$") then
    error("skiff.plugin: name must be a lower-case name such as \"website\"", 2)
  end
  if not kinds[t.kind] then
    error(("skiff.plugin: kind %q; a Lua plugin is a \"controller\", \"scheduler\" or " ..
           "\"admission\""):format(tostring(t.kind)), 2)
  end
  for _, hook in ipairs({ "start", "stop" }) do
    if t[hook] ~= nil and type(t[hook]) ~= "function" then
      error("skiff.plugin: " .. hook .. " must be a function", 2)
    end
  end
  return t
end

-- ---- status conditions (metav1.Condition) ----------------------------------
local conditions = {}
skiff.conditions = conditions

-- The condition of that type in obj.status.conditions, or nil.
function conditions.get(obj, ctype)
  local list = obj and obj.status and obj.status.conditions
  if type(list) ~= "table" then return nil end
  for _, c in ipairs(list) do
    if c.type == ctype then return c end
  end
  return nil
end

-- true when the condition is there with status "True".
function conditions.is_true(obj, ctype)
  local c = conditions.get(obj, ctype)
  return c ~= nil and c.status == "True"
end

-- Sets a condition in obj.status.conditions (made as needed):
-- lastTransitionTime moves only when the status changes, observedGeneration
-- follows metadata.generation. Returns true when anything changed.
function conditions.set(obj, ctype, status, reason, message)
  if status ~= "True" and status ~= "False" and status ~= "Unknown" then
    error(("skiff.conditions.set: status %q; use \"True\", \"False\" or \"Unknown\"")
          :format(tostring(status)), 2)
  end
  obj.status = obj.status or skiff.json.object()
  obj.status.conditions = obj.status.conditions or skiff.json.array()
  local gen = obj.metadata and obj.metadata.generation
  local c = conditions.get(obj, ctype)
  if not c then
    c = skiff.json.object({ type = ctype })
    table.insert(obj.status.conditions, c)
  end
  local changed = false
  if c.status ~= status then
    c.status = status
    c.lastTransitionTime = skiff.timestamp()
    changed = true
  end
  reason = reason or ""
  message = message or ""
  if c.reason ~= reason then c.reason, changed = reason, true end
  if c.message ~= message then c.message, changed = message, true end
  if gen ~= nil and c.observedGeneration ~= gen then c.observedGeneration, changed = gen, true end
  return changed
end

-- Removes a condition; true when there was one.
function conditions.remove(obj, ctype)
  local list = obj and obj.status and obj.status.conditions
  if type(list) ~= "table" then return false end
  for i, c in ipairs(list) do
    if c.type == ctype then
      table.remove(list, i)
      return true
    end
  end
  return false
end

return skiff
