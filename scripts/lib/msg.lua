-- Messages: every text a person reads comes from the region's catalog (policy.text), in the
-- run's language, never from a literal in a procedure.
local policy = require("policy")
local ui = require("ui")

local M = {}

-- text returns the catalog message key with its {placeholders} filled.
function M.text(key, args)
  return policy.text(key, args)
end

-- The key and args go along with the text, so that a GUI driving --ui json gets them too.
function M.say(key, args) ui.say(policy.text(key, args), { key = key, args = args }) end
function M.warn(key, args) ui.warn(policy.text(key, args), { key = key, args = args }) end

-- fail shows the message as an error and returns what a procedure returns to stop:
-- nil and {code, message, shown}. The code picks the exit code (REFUSED 7, PIN_* 4, CA_* 5);
-- shown tells the host the person has read it, so it is not printed again. detail is the
-- technical message behind it (a module's error), kept for --debug, never shown.
function M.fail(code, key, args, detail)
  local text = policy.text(key, args)
  ui.error(text, { key = key, args = args })
  return nil, { code = code, message = text, shown = true, detail = detail }
end

-- reason is the catalog's short text for an error's code (reason_CODE in lower case, else
-- reason_other), for a {reason} in a message: a module's own message is technical English;
-- the transcript keeps it.
function M.reason(err)
  local code = (err and err.code) or "ERROR"
  local ok, text = pcall(policy.text, "reason_" .. code:lower())
  if ok then return text end
  return policy.text("reason_other", { code = code })
end

-- minutes rounds a number of seconds up to whole minutes, for messages.
function M.minutes(seconds)
  return math.ceil((seconds or 0) / 60)
end

return M
