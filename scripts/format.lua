-- Procedure 4: format the token (C_InitToken) so it can be registered again. Refused while
-- another token is plugged in, and on a token holding a profile or a half-finished
-- registration unless support overrides it with a ticket, which is recorded.
local journal = require("journal")
local ui = require("ui")
local msg = require("lib.msg")
local tokens = require("lib.tokens")

return {
  name = "format",
  version = "1.0.0",
  api = 1,
  prompts = {
    { id = "so_pin", kind = "secret" },
    { id = "token_label", kind = "text", optional = true },
    { id = "confirm", kind = "confirm" },
    { id = "support_ticket", kind = "text", note = "with `--support-override`" },
    { id = "final_try", kind = "confirm", human_only = true, note = "spending the last try of a PIN" },
  },
  description = "Format the token (refused while it holds a profile, unless support overrides)",
  run = function(ctx)
    local cfg = ctx.config
    local tok, info = tokens.find(ctx, { strict = true })
    if not tok then return nil, info end
    local serial = info.serial

    -- Certificates and public keys are visible without a login.
    local prof = tokens.profile(tok)
    local entry = journal.load(serial)
    local refusal
    if #prof.certs > 0 then
      refusal = { "format_refused_profile", { subject = prof.certs[1].subject } }
    elseif entry or #prof.keys > 0 then
      refusal = { "format_refused_enrollment", { date = entry and entry.started or "?" } }
    end
    if refusal then
      if not ctx.args.support_override then
        return msg.fail("REFUSED", refusal[1], refusal[2])
      end
      local ticket = ui.ask { id = "support_ticket", label = msg.text("support_ticket_prompt"),
        validate = function(v) return v ~= "", msg.text("format_ticket_missing") end }
      msg.warn("format_override", { reference = ticket })
      journal.record(serial, "format_override", { ticket = ticket })
    end

    local ok, err = tokens.check(tok, "so")
    if not ok then return nil, err end
    local so_pin = ui.secret { id = "so_pin", label = msg.text("so_pin_prompt") }
    local label = ui.ask { id = "token_label", label = msg.text("format_label_prompt"), default = cfg.token.label }
    local question = msg.text("format_confirm", { token = tokens.describe(info) })
    if not ui.confirm { id = "confirm", label = question, default = false } then
      return msg.fail("CANCELLED", "cancelled")
    end

    -- C_InitToken checks the administrator password itself: log in first, so a wrong one is
    -- counted and reported like any other login.
    ok, err = tokens.login(tok, "so", so_pin)
    if not ok then return nil, err end
    tok:logout()
    -- The token comes out blank again, ready for enroll: the region's default user password
    -- is set in the same step as the format, so that no crash in between can leave a token
    -- without a user password.
    local bar = ui.progress { id = "format", label = msg.text("progress_formatting") }
    ok, err = tok:format { so_pin = so_pin, label = label, user_pin = cfg.token.default_user_pin }
    bar:done(ok ~= nil)
    if not ok then
      return nil, err -- the host shows the catalog's text for the code
    end
    if journal.load(serial) then journal.finish(serial) end
    msg.say("format_done")
    return { serial = serial }
  end,
}
