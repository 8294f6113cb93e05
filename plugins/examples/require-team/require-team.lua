-- require-team.lua: every Deployment says which team owns it. A Deployment
-- without a team label gets its namespace's example.skiff.io/team label
-- (mutate); one that still has none, in a namespace labelled
-- example.skiff.io/team-required=true, is refused (validate).
return skiff.plugin{
  name = "require-team",
  kind = "admission",
  version = "1.0",
  kinds = { "Deployment" },
  operations = { "CREATE", "UPDATE" },
  mutate = function(req)
    local labels = req.object.metadata.labels or {}
    if labels.team then return end
    local ns = skiff.lookup("Namespace", nil, req.namespace)
    local team = ns and ns.metadata.labels and ns.metadata.labels["example.skiff.io/team"]
    if team then
      labels.team = team
      req.object.metadata.labels = labels
      skiff.warn("label team=" .. team .. " added from namespace " .. req.namespace)
    end
  end,
  validate = function(req)
    local labels = req.object.metadata.labels or {}
    if labels.team then return true end
    local ns = skiff.lookup("Namespace", nil, req.namespace)
    local required = ns and ns.metadata.labels and ns.metadata.labels["example.skiff.io/team-required"]
    if required == "true" then
      return false, "metadata.labels.team is required in namespace " .. req.namespace
    end
  end,
}
