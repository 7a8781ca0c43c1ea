-- What a person types, checked against the region's rules (module policy) as it is typed:
-- on a terminal an invalid answer is asked again; from an answers file it stops the run
-- with the rule's message. Nothing here touches the token.
local policy = require("policy")
local ui = require("ui")
local msg = require("lib.msg")

local M = {}

-- TRIES bounds how often a person at a terminal is asked again after a mistake the host
-- finds only once it tries the answer (a wrong OTP PIN, a missing file, a refused password).
M.TRIES = 3

-- new_password shows the password rules, then asks for the new token password twice and
-- applies the password policy. When the two differ, a person is asked for both again (the
-- first may be the one mistyped); from an answers file the mismatch stops the run.
function M.new_password(ctx)
  local rules = ctx.config.password
  msg.say("password_rules", { min = rules.min_length, max = rules.max_length, sequence = rules.max_sequence })
  local interactive = ui.interactive()
  for attempt = 1, M.TRIES do
    local new = ui.secret {
      id = "new_pin", label = msg.text("new_password_prompt"), hints = policy.hints("password"),
      -- The same text as its own confirmation checks every rule except the match. The err
      -- table goes to ui as it is: its code and the rules broken reach a GUI.
      validate = function(v)
        local ok, err = policy.password(v, v)
        return ok, err
      end,
    }
    local confirm = ui.secret {
      id = "new_pin_confirm", label = msg.text("new_password_confirm_prompt"),
      validate = not interactive and function(v)
        local ok, err = policy.password(new, v)
        return ok, err
      end or nil,
    }
    local ok, err = policy.password(new, confirm)
    if ok then
      return new
    end
    if attempt == M.TRIES then
      ui.error(err.message)
      return nil, { code = err.code or "INVALID_INPUT", message = err.message }
    end
    ui.warn(err.message)
  end
end

-- user_id asks for the user ID as printed on the acceptance act; default (optional) is the
-- one a resumed registration was started for.
function M.user_id(ctx, default)
  return ui.ask {
    id = "user_id", label = msg.text("user_id_prompt", { example = ctx.config.user_id.example }), default = default,
    hints = policy.hints("user_id"),
    validate = function(v)
      local ok, err = policy.user_id(v)
      return ok, err
    end,
  }
end

-- otp_pin asks for the OTP-card PIN and returns it normalised (trimmed, upper-cased).
function M.otp_pin(ctx)
  local raw = ui.secret {
    id = "otp_pin", label = msg.text("otp_pin_prompt", { length = ctx.config.otp_pin.length }),
    hints = policy.hints("otp_pin"),
    validate = function(v)
      local pin, err = policy.otp_pin(v)
      return pin ~= nil, err
    end,
  }
  return (policy.otp_pin(raw))
end

-- yes_no asks a yes/no question that an answers file may answer without --yes (the answer
-- is data, not a go-ahead): values "true" and "false", so YAML booleans work.
function M.yes_no(id, label, default)
  return ui.choose {
    id = id, label = label, default = default and "true" or "false",
    choices = {
      { value = "true", label = msg.text("answer_yes") },
      { value = "false", label = msg.text("answer_no") },
    },
  } == "true"
end

return M
