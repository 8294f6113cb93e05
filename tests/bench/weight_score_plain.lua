-- tests/bench/weight_score_plain.lua - the plain Lua twin of
-- plugins/examples/weight-score, for tests/bench/step_bench: the same
-- score (the integer in the skiff.dev/weight label, at most 100) computed
-- in Lua instead of by node-weight's C function.
local function label_weight(pod, node)
  local v = node.labels["skiff.dev/weight"]
  local w = v and math.tointeger(tonumber(v)) or 0
  if w < 0 then return 0 end
  if w > 100 then return 100 end
  return w
end

return skiff.plugin{
  name = "weight-score-plain",
  kind = "scheduler",
  steps = {
    { name = "LabelWeight", score = label_weight },
  },
}
