-- A guided look at a token: what it is, its PIN counters, a key pair made on it and a
-- signature check. It changes nothing but adding one key pair, and never spends a PIN try
-- that the token's counters say it may not.
local token = require("token")
local ui = require("ui")

local function describe_pin(flags)
  if flags.user_pin_locked then
    return "locked: the administrator must unblock it"
  elseif flags.user_pin_final_try then
    return "ONE try left"
  elseif flags.user_pin_count_low then
    return "a wrong password was typed recently"
  end
  return "ok"
end

return {
  name = "tour",
  version = "1.0.0",
  api = 1,
  description = "Show the token, log in, and make a key pair on it",
  run = function(ctx)
    local tok, err = token.wait { timeout = ctx.config.wait_seconds or 30 }
    if not tok then
      return nil, err
    end
    local info = tok:info()
    ui.say(("Token %q, serial %s (%s, %s)"):format(info.label, info.serial, info.manufacturer, info.model))
    ui.say("User password: " .. describe_pin(info.flags))
    if info.flags.user_pin_locked then
      return nil, { code = "PIN_LOCKED", message = "the user password is locked; run unblock" }
    end
    if info.flags.user_pin_final_try then
      return nil, { code = "REFUSED", message = "one password try is left; the tour will not spend it" }
    end

    local pin = ui.secret { id = "current_pin", label = "Token password" }
    local ok, lerr = tok:login(pin)
    if not ok then
      if lerr.retries_left then
        ui.warn(("Wrong password: %d tries left"):format(lerr.retries_left))
      end
      return nil, lerr
    end

    local bar = ui.progress { id = "keygen", label = "Generating a key pair on the token" }
    local key, kerr = tok:generate_key { type = "ec", curve = "P-256", label = "tokenrun tour" }
    if not key then
      bar:done(false, kerr.message)
      return nil, kerr
    end
    bar:done(true)
    ui.say(("Key pair %s (%s %s) made on the token; its private half cannot leave it"):format(
      key.id, key.type, key.curve))

    local keys = tok:keys()
    ui.say(("The token holds %d key pair(s) and %d certificate(s)"):format(#keys, #tok:certificates()))
    tok:logout()
    return { key_id = key.id, serial = info.serial }
  end,
}
