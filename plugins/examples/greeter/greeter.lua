-- greeter.lua: every ConfigMap labelled greet=yes gets a greeting.
return skiff.plugin{
  name = "greeter",
  kind = "controller",
  version = "0.1",
  settings = {
    { name = "greeting", type = "string", default = "hello", help = "the word to greet with" },
  },
  start = function(ctx)
    local greeting = ctx.settings.greeting
    skiff.watch("ConfigMap", { labelSelector = "greet=yes" }, function(cm, key)
      if not cm then return end -- deleted: nothing to do
      local want = greeting .. ", " .. key.name
      if cm.data and cm.data.greeting == want then return end
      local _, err = skiff.patch("ConfigMap", key.namespace, key.name,
                                 { data = { greeting = want } })
      if err then error(err.message) end -- the reconcile is retried with back-off
      skiff.event(cm, "Normal", "Greeted", want)
      skiff.log("info", "greeted", key.key)
    end)
  end,
}
