-- Finding the one token to work on, and the PIN counters read before every login.
local token = require("token")
local ui = require("ui")
local msg = require("lib.msg")

local M = {}

-- passed[role] is set once check has warned about role's counters and let a login go
-- ahead, so that the login right after it does not warn a second time.
local passed = {}

-- describe names a token for people: label and serial.
function M.describe(info)
  return ("%s (%s)"):format(info.label, info.serial)
end

-- names lists the initialised tokens present, one per line, for the "several" messages.
local function names(list)
  local out = {}
  for _, info in ipairs(list) do
    if info.initialized then
      out[#out + 1] = "  - " .. M.describe(info)
    end
  end
  return table.concat(out, "\n"), #out
end

-- find waits (region token.wait seconds) for exactly one token and refuses several, naming
-- them. opts.strict counts every initialised token present even when --token narrows the
-- choice: format must never run while another company's token is plugged in.
function M.find(ctx, opts)
  opts = opts or {}
  local wait = ctx.config.token.wait
  if opts.strict then
    local listed, count = names(token.list())
    if count > 1 then
      return msg.fail("SEVERAL_TOKENS", "format_several_tokens", { tokens = listed })
    end
  end
  msg.say("token_waiting", { seconds = wait })
  -- The wait is a progress too, so that a GUI can count it down.
  local bar = ui.progress { id = "token_wait", label = msg.text("progress_token_wait") }
  local tok, err = token.wait { timeout = wait, progress = bar }
  bar:done(tok ~= nil)
  if not tok then
    if err.code == "SEVERAL_TOKENS" then
      return msg.fail(err.code, opts.strict and "format_several_tokens" or "token_several",
        { tokens = (names(token.list())) })
    elseif err.code == "TOKEN_NOT_PRESENT" or err.code == "TIMED_OUT" then
      return msg.fail(err.code, "token_not_found", { seconds = wait })
    elseif err.code == "TOKEN_BUSY" then
      return msg.fail(err.code, "token_busy")
    end
    -- The host shows the catalog's text for the code, once.
    return nil, err
  end
  local info = tok:info()
  msg.say("token_found", { token = M.describe(info) })
  return tok, info
end

-- check reads the counters of role ("user" or "so") before a login. It warns when tries
-- are low, stops at a locked PIN naming the way out, and spends a final try only when a
-- person at the terminal says so: an answers file or a driver never can, so a batch of
-- wrong PINs can never lock a token. The host's safety floor enforces the same under every
-- script (and shows its own count of failed tries in these flags); this is the wording.
function M.check(tok, role)
  local p = role == "so" and "so_pin" or "user_pin"
  local info = tok:info()
  local f = info.flags
  if role ~= "so" and info.user_pin_initialized == false then
    return msg.fail("PIN_NOT_INITIALIZED", "pin_not_initialized")
  end
  if f[p .. "_locked"] then
    return msg.fail("PIN_LOCKED", p .. "_locked")
  end
  if f[p .. "_final_try"] then
    msg.warn(p .. "_final_try")
    if not ui.interactive() then
      return msg.fail("REFUSED", "pin_final_try_needs_person")
    end
    local go_on = ui.confirm {
      id = "final_try", label = msg.text("pin_final_try_prompt"), default = false, human_only = true,
    }
    if not go_on then
      return msg.fail("REFUSED", "pin_final_try_needs_person")
    end
  elseif f[p .. "_count_low"] then
    msg.warn(p .. "_count_low")
  end
  if f[p .. "_retries_left"] and (f[p .. "_count_low"] or f[p .. "_final_try"]) then
    msg.warn(p .. "_tries_left", { retries_left = f[p .. "_retries_left"] })
  end
  passed[role] = true
  return true
end

-- login checks the counters, then logs in once; a wrong PIN is reported with the tries left.
-- The counters are read again unless check has just done so (and warned).
function M.login(tok, role, pin)
  local ok, err = true, nil
  if not passed[role] then
    ok, err = M.check(tok, role)
  end
  passed[role] = nil
  if not ok then
    return nil, err
  end
  local p = role == "so" and "so_pin" or "user_pin"
  ok, err = tok:login(pin, { so = role == "so" })
  if ok then
    return true
  end
  if err.code == "PIN_INCORRECT" then
    local _, failure = msg.fail(err.code, p .. "_incorrect", nil, err.message)
    if err.retries_left then
      msg.warn(p .. "_tries_left", { retries_left = err.retries_left })
    end
    failure.retries_left = err.retries_left
    return nil, failure
  elseif err.code == "PIN_LOCKED" then
    return msg.fail(err.code, p .. "_locked")
  elseif err.code == "REFUSED" then
    -- The host's safety floor kept the try for a person (see README: the safety floor).
    return msg.fail(err.code, "pin_try_refused")
  elseif err.code == "PIN_NOT_INITIALIZED" then
    return msg.fail(err.code, "pin_not_initialized")
  end
  return nil, err -- the host shows the catalog's text for the code
end

-- profile finds what enrollment leaves on a token: keys, and which of them have a
-- certificate with the same id. Certificates are public; private keys show after a login.
function M.profile(tok)
  local certs = tok:certificates() or {}
  local by_id = {}
  for _, c in ipairs(certs) do
    by_id[c.id] = c
  end
  local out = { keys = {}, certs = certs, complete = nil, bare = {} }
  for _, k in ipairs(tok:keys() or {}) do
    out.keys[#out.keys + 1] = k
    if by_id[k.id] then
      out.complete = out.complete or { key = k, cert = by_id[k.id] }
    else
      out.bare[#out.bare + 1] = k
    end
  end
  return out
end

return M
