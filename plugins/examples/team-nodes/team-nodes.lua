-- team-nodes.lua: nodes belong to teams. A node labelled
-- example.skiff.io/dedicated=TEAM takes only pods labelled team=TEAM
-- (filter TeamOnly); a pod labelled team=TEAM prefers nodes labelled
-- example.skiff.io/team=TEAM (score TeamFirst).
return skiff.plugin{
  name = "team-nodes",
  kind = "scheduler",
  version = "1.0",
  steps = {
    { name = "TeamOnly",
      filter = function(pod, node)
        local owner = node.labels["example.skiff.io/dedicated"]
        if owner == nil or owner == pod.labels.team then return true end
        return false, "node(s) dedicated to another team"
      end },
    { name = "TeamFirst",
      score = function(pod, node)
        if pod.labels.team ~= nil and node.labels["example.skiff.io/team"] == pod.labels.team then
          return 100
        end
        return 0
      end },
  },
}
