-- Procedure 3: set a new user password as administrator (C_InitPIN), which unblocks a
-- locked one. The administrator's own tries are shown first: when they run out the token
-- can be neither unblocked nor formatted.
local ui = require("ui")
local input = require("lib.input")
local msg = require("lib.msg")
local tokens = require("lib.tokens")

return {
  name = "unblock",
  version = "1.0.0",
  api = 1,
  prompts = {
    { id = "so_pin", kind = "secret" },
    { id = "new_pin", kind = "secret" },
    { id = "new_pin_confirm", kind = "secret" },
    { id = "final_try", kind = "confirm", human_only = true, note = "spending the last try of a PIN" },
  },
  description = "Set a new user password as administrator (unblocks a locked one)",
  run = function(ctx)
    local tok, info = tokens.find(ctx)
    if not tok then return nil, info end
    local flags = info.flags
    if not flags.user_pin_locked then
      msg.say("unblock_not_locked")
    end
    if flags.so_pin_retries_left then
      msg.say("so_pin_tries_left", { retries_left = flags.so_pin_retries_left })
    elseif not (flags.so_pin_count_low or flags.so_pin_final_try or flags.so_pin_locked) then
      msg.say("unblock_so_tries_unknown")
    end
    local ok, err = tokens.check(tok, "so")
    if not ok then return nil, err end

    local so_pin = ui.secret { id = "so_pin", label = msg.text("so_pin_prompt") }
    local new_pin, perr = input.new_password(ctx)
    if not new_pin then return nil, perr end
    ok, err = tokens.login(tok, "so", so_pin)
    if not ok then return nil, err end
    ok, err = tok:init_pin(new_pin)
    tok:logout()
    if not ok then
      return nil, err -- the host shows the catalog's text for the code
    end
    msg.say("unblock_done")
    return { serial = info.serial }
  end,
}
