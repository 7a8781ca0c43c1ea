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
-- nil and {code, message}. The code picks the exit code (REFUSED 7, PIN_* 4, CA_* 5).
function M.fail(code, key, args)
  local text = policy.text(key, args)
  ui.error(text, { key = key, args = args })
  return nil, { code = code, message = text }
end

-- minutes rounds a number of seconds up to whole minutes, for messages.
function M.minutes(seconds)
  return math.ceil((seconds or 0) / 60)
end

return M
