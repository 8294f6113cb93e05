-- plugins/examples/weight-score/weight_score.lua - the worked example of
-- the libffi bridge: a Lua scheduler score step whose arithmetic is a C
-- function, node-weight's label_weight (plugins/examples/node-weight),
-- called through skiff.ffi. Lua keeps the policy (which label, how to
-- clamp); C does the per-node work.
local nw = skiff.ffi.load("node-weight")

local function label_weight(pod, node)
  local w = nw.label_weight(node.labels, "skiff.dev/weight")
  if w > 100 then return 100 end
  return w
end

return skiff.plugin{
  name = "weight-score",
  kind = "scheduler",
  description = "prefers nodes by their skiff.dev/weight label, computed in C",
  steps = {
    { name = "LabelWeight", score = label_weight },
  },
}
