return {
  name = "too_new", version = "9.0.0", api = 99, description = "needs a future host",
  run = function() end,
}
