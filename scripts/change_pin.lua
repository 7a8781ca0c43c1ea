-- Procedure 2: change the token's user password (current one, then the new one twice).
local ui = require("ui")
local input = require("lib.input")
local msg = require("lib.msg")
local tokens = require("lib.tokens")

return {
  name = "change_pin",
  version = "1.0.0",
  api = 1,
  prompts = {
    { id = "current_pin", kind = "secret" },
    { id = "new_pin", kind = "secret" },
    { id = "new_pin_confirm", kind = "secret" },
    { id = "final_try", kind = "confirm", human_only = true, note = "spending the last try of a PIN" },
  },
  description = "Change the token's user password",
  run = function(ctx)
    local tok, info = tokens.find(ctx)
    if not tok then return nil, info end
    -- Stop before asking anything when the counters already forbid a try.
    local ok, err = tokens.check(tok, "user")
    if not ok then return nil, err end

    local current = ui.secret { id = "current_pin", label = msg.text("user_pin_prompt") }
    local new_pin, perr = input.new_password(ctx)
    if not new_pin then return nil, perr end
    if new_pin == current then
      return msg.fail("INVALID_INPUT", "password_same_as_old")
    end
    ok, err = tokens.login(tok, "user", current)
    if not ok then return nil, err end
    ok, err = tok:set_pin(current, new_pin)
    tok:logout()
    if not ok then
      return nil, err -- the host shows the catalog's text for the code
    end
    msg.say("change_pin_done")
    return { serial = info.serial }
  end,
}
