-- tests/bench/weight_score_scalar.lua - plugins/examples/weight-score with
-- a string instead of a table crossing into C: the label's value goes to
-- node-weight's parse_weight, so no Lua table becomes JSON on each call.
-- For tests/bench/step_bench.
local nw = skiff.ffi.load("node-weight")

local function label_weight(pod, node)
  local w = nw.parse_weight(node.labels["skiff.dev/weight"])
  if w > 100 then return 100 end
  return w
end

return skiff.plugin{
  name = "weight-score-scalar",
  kind = "scheduler",
  steps = {
    { name = "LabelWeight", score = label_weight },
  },
}
