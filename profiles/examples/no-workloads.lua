-- profiles/examples/no-workloads.lua - a Lua profile: an API server that
-- stores objects but runs no workload controllers and no scheduler (a
-- Deployment gets no ReplicaSet). Run it with
--   skiff server --profile profiles/examples/no-workloads.lua
-- The chunk runs in a sandbox (no io, os only getenv/time/clock/date) and
-- returns a table shaped like a JSON profile.
local keep = { "namespace", "garbage-collector", "serviceaccount" }

return {
  extends = "single-node",   -- everything else as the default profile
  description = "stores objects only: no workload controllers, no scheduler",
  controllers = keep,
  scheduler = "none",
  server = {
    -- any option of `skiff server --help`, by name
    ["max-requests-inflight"] = 100,
  },
}
