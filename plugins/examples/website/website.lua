-- plugins/examples/website/website.lua - a controller for the Website
-- custom resource (example.skiff.io/v1): each Website owns a ConfigMap with
-- its content, a Deployment serving it and a Service in front. Edits to
-- those objects are put back (drift), and the Website's status says how it
-- went: conditions Reconciled and Ready, availableReplicas.
-- Run it with: skiff server --controllers all,website.lua --plugin-dir DIR

local labels_of = function(site)
  return { ["app.kubernetes.io/name"] = "website",
           ["app.kubernetes.io/instance"] = site.metadata.name,
           ["app.kubernetes.io/managed-by"] = "website-controller" }
end

-- what the Website asks for: the three objects it owns
local function desired(site)
  local name, ns, spec = site.metadata.name, site.metadata.namespace, site.spec
  local owner = { skiff.owner_ref(site) }
  local labels = labels_of(site)
  local meta = function(n)
    return { name = n, namespace = ns, labels = labels, ownerReferences = owner }
  end
  local content = {
    apiVersion = "v1", kind = "ConfigMap", metadata = meta(name .. "-content"),
    data = { ["index.html"] = spec.content },
  }
  local deployment = {
    apiVersion = "apps/v1", kind = "Deployment", metadata = meta(name),
    spec = {
      replicas = spec.replicas,
      selector = { matchLabels = labels },
      template = {
        metadata = { labels = labels },
        spec = {
          containers = { {
            name = "web", image = spec.image,
            ports = { { containerPort = spec.port } },
            volumeMounts = { { name = "content", mountPath = "/usr/share/nginx/html" } },
          } },
          volumes = { { name = "content", configMap = { name = name .. "-content" } } },
        },
      },
    },
  }
  local service = {
    apiVersion = "v1", kind = "Service", metadata = meta(name),
    spec = { selector = labels, ports = { { port = spec.port, targetPort = spec.port } } },
  }
  return { content, deployment, service }
end

local function reconcile(site, key)
  if not site or site.metadata.deletionTimestamp then
    return -- what it owned is garbage-collected through ownerReferences
  end
  local failed
  for _, obj in ipairs(desired(site)) do
    local result, err = skiff.apply(obj)
    if not result then
      failed = ("%s %s: %s"):format(obj.kind, obj.metadata.name, err.message)
      break
    elseif result == "configured" then
      skiff.event(site, "Normal", "Reconciled", obj.kind .. " " .. obj.metadata.name .. " put back as specified")
    end
  end

  local status = skiff.json.copy(site.status or skiff.json.object())
  local view = { metadata = site.metadata, status = status }
  if failed then
    skiff.conditions.set(view, "Reconciled", "False", "ApplyFailed", failed)
  else
    skiff.conditions.set(view, "Reconciled", "True", "Applied", "ConfigMap, Deployment and Service are as specified")
  end
  local dep = skiff.cached("Deployment", key.namespace, site.metadata.name)
  local available = dep and dep.status and dep.status.availableReplicas or 0
  status.availableReplicas = available
  if available >= site.spec.replicas then
    skiff.conditions.set(view, "Ready", "True", "Available", ("%d of %d replicas available"):format(available, site.spec.replicas))
  else
    skiff.conditions.set(view, "Ready", "False", "Progressing", ("%d of %d replicas available"):format(available, site.spec.replicas))
  end
  if not skiff.json.equal(status, site.status or {}) then
    local _, err = skiff.patch("Website", key.namespace, key.name, { status = status }, { subresource = "status" })
    if err and err.code ~= 404 then error("status update failed: " .. err.message) end
  end
  if failed then error(failed) end -- retried with back-off
end

return skiff.plugin{
  name = "website",
  kind = "controller",
  version = "1.0",
  description = "Websites (example.skiff.io/v1): a Deployment, a Service and a ConfigMap each",
  settings = {
    { name = "workers", type = "int", default = 4, help = "Websites reconciled at once" },
  },
  start = function(ctx)
    skiff.watch("websites.example.skiff.io",
                { owns = { "ConfigMap", "Deployment", "Service" }, workers = ctx.settings.workers },
                reconcile)
  end,
}
