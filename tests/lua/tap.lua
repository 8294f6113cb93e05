-- tests/lua/tap.lua - TAP output for the Lua tests: ok, is, like, case
-- (a named test that may fail with an error), wait (poll a condition while
-- the loop runs) and done.
local M = { n = 0 }

local function report(pass, desc, diag)
  M.n = M.n + 1
  print((pass and "ok " or "not ok ") .. M.n .. " - " .. desc)
  if not pass and diag then
    for line in tostring(diag):gmatch("[^\n]+") do print("# " .. line) end
  end
  return pass
end

local function show(v)
  if type(v) == "table" then return skiff.json.encode(v) end
  return tostring(v)
end

function M.ok(cond, desc, diag) return report(cond and true or false, desc, diag) end

-- is(got, want, desc): equal values; tables compared as JSON (deep)
function M.is(got, want, desc)
  local same
  if type(got) == "table" and type(want) == "table" then same = skiff.json.equal(got, want)
  else same = got == want end
  return report(same, desc, not same and ("expected: " .. show(want) .. "\n     got: " .. show(got)))
end

-- like(str, plain, desc): str contains the plain text
function M.like(s, text, desc)
  local pass = type(s) == "string" and s:find(text, 1, true) ~= nil
  return report(pass, desc, not pass and ("expected to contain: " .. text .. "\ngot: " .. show(s)))
end

-- case(desc, fn): fn runs protected; an error is a failure with its message
function M.case(desc, fn)
  local okk, err = pcall(fn)
  if not okk then report(false, desc, err) end
  return okk
end

-- wait(fn, [seconds]): polls fn until it returns a true value (or the time
-- runs out); returns that value
function M.wait(fn, seconds)
  local deadline = skiff.now() + (seconds or 10)
  repeat
    local v = fn()
    if v then return v end
    skiff.sleep(0.02)
  until skiff.now() > deadline
  return nil
end

function M.done() print("1.." .. M.n) end

return M
