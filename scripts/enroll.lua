-- Procedure 1: first registration. Key pair on the token, certificate from the CA, new
-- token password. Every step is written to the journal (keyed by the token's serial)
-- before the next begins, so a run interrupted anywhere continues on the next run: the
-- key already made is reused, a pending certificate is fetched, an issued one is never
-- lost. Formatting is never offered as a remedy.
--
-- Journal steps: generating -> key_generated -> requested -> pending | issued -> stored
-- -> verified -> setting_pin -> pin_set -> (finished). setting_pin is recorded just before
-- tok:set_pin and pin_set once it returns, so a rerun after the password was changed knows
-- it and logs in with no password at all. A journal left at setting_pin alone (a kill -9 or
-- a crash during the change; when a signal stops the run the host settles the step) means
-- "not known": the rerun asks a person rather than guess with a PIN try from a file.
local ca = require("ca")
local journal = require("journal")
local policy = require("policy")
local sign = require("sign")
local ui = require("ui")
local input = require("lib.input")
local msg = require("lib.msg")
local tokens = require("lib.tokens")

-- The order of the steps, to ask "has the run got past X?".
local ORDER = { generating = 1, key_generated = 2, requested = 3, pending = 4, issued = 5,
  stored = 6, verified = 7, setting_pin = 8, pin_set = 9 }
local function past(entry, step)
  return entry ~= nil and (ORDER[entry.step] or 0) >= ORDER[step]
end

-- validity_choices are the region's registration types in the run's language.
local function validity_choices(ctx)
  local out = {}
  for _, v in ipairs(ctx.config.validity) do
    local label = v.label[ctx.config.language] or v.label.en or v.id
    out[#out + 1] = { value = v.id, label = label, years = v.years }
  end
  return out
end

local function find_validity(ctx, id)
  for _, v in ipairs(validity_choices(ctx)) do
    if v.value == id then return v end
  end
end

-- container_problem tells the person why the initial key did not open and returns the error
-- (nil, {code, message}): for a wrong password, what to check, pointing out where 1/I and 0/O
-- sit in the PIN typed.
local function container_problem(ctx, err, file, user_id, password)
  if err.code == "CA_WRONG_PASSWORD" then
    local text = msg.text("container_open_failed",
      { file = file, user_id = user_id, length = ctx.config.otp_pin.length })
    ui.error(text)
    local positions = policy.confusable(password)
    if #positions > 0 then
      local list = {}
      for i, p in ipairs(positions) do list[i] = tostring(p) end
      msg.warn("otp_pin_confusable", { positions = table.concat(list, ", ") })
    end
    return nil, { code = err.code, shown = true, detail = err.message, message = text }
  elseif err.code == "CA_CONTAINER_MISSING" then
    return msg.fail(err.code, "key_file_missing", { file = file })
  elseif err.code == "CA_UNSUPPORTED_CONTAINER" then
    return msg.fail(err.code, "container_unsupported", { file = file })
  end
  return msg.fail(err.code, "container_damaged", { file = file })
end

-- open_container loads the initial key. A person at a terminal is asked again (input.TRIES
-- in all) for what did not work: the password after a wrong one, the file after a missing,
-- damaged or unsupported one.
local function open_container(ctx, user_id)
  local file = ui.ask { id = "key_file", kind = "file", label = msg.text("key_file_prompt") }
  local otp = input.otp_pin(ctx)
  local own = not input.yes_no("pin_is_password", msg.text("password_matches_pin_confirm"), true)
  local function container_password()
    if own then
      return ui.secret { id = "key_password", label = msg.text("key_file_password_prompt") }
    end
    return otp
  end
  local password = container_password()
  for attempt = 1, input.TRIES do
    local auth, err = ca.load_pkcs12(file, password)
    if auth then
      return auth, file
    end
    local _, shown = container_problem(ctx, err, file, user_id, password)
    if not ui.interactive() or attempt == input.TRIES then
      return nil, shown
    end
    msg.say("try_again")
    if err.code == "CA_WRONG_PASSWORD" then
      if not own then otp = input.otp_pin(ctx) end
      password = container_password()
    else
      file = ui.ask { id = "key_file", kind = "file", label = msg.text("key_file_prompt") }
    end
  end
end

-- cn is the user a certificate was issued to: the CN of its subject.
local function cn(subject)
  return subject and subject:match("CN=([^,+]+)")
end

-- names_user: whether a CA refusal names the user ID sent (devca: "the request names user
-- \"X\" but the initial key belongs to user ..."), which makes the ID the likely mistake.
local function names_user(err, user_id)
  return err.code == "CA_REFUSED" and user_id ~= nil and (err.message or ""):find(user_id, 1, true) ~= nil
end

-- find_key is the key this enrollment made: by the id in the journal, else (killed between
-- generating and recording) a key with the profile's label and no certificate.
local function find_key(prof, entry, label)
  local want = entry and entry.data and entry.data.key_id
  for _, k in ipairs(prof.keys) do
    if want and k.id == want then return k end
  end
  for _, k in ipairs(prof.bare) do
    if k.label == label then return k end
  end
end

local function has_cert(prof, id)
  for _, c in ipairs(prof.certs) do
    if c.id == id then return c end
  end
end

-- pin_after_stop finds which password the token has after a run stopped during the
-- password change (the journal says setting_pin, not pin_set), spending no try on a guess:
-- the token's "to be changed" flag decides when the token raised it before the change;
-- otherwise a person at the terminal (a human-only confirmation first: never an answers file
-- or a program) types the password the token has now. Returns "new" (the change went
-- through), "old" (it did not), or "ask" and the password the person typed; nil, err to stop.
local function pin_after_stop(entry, info)
  if entry.data.must_change == true then
    return info.flags.user_pin_to_be_changed and "old" or "new"
  end
  if not ui.interactive() then
    return msg.fail("REFUSED", "enroll_pin_unknown_needs_person")
  end
  msg.warn("enroll_pin_unknown")
  local go_on = ui.confirm {
    id = "pin_unknown_go_on", label = msg.text("enroll_pin_unknown_confirm"), default = true, human_only = true,
  }
  if not go_on then
    return msg.fail("CANCELLED", "cancelled")
  end
  return "ask", ui.secret { id = "token_pin_now", label = msg.text("enroll_pin_now_prompt") }
end

-- MAX_CA_STEPS bounds the CA steps a journal keeps (the last ones): one per run that asked.
local MAX_CA_STEPS = 20

-- ca_step is what the journal keeps of one CA step (one ca.enroll call: every attempt and
-- wait of it): when it started and ended, how many seconds it took, and how it ended.
local function ca_steps(data, res, outcome)
  local steps = {}
  local old = data.ca_steps or {}
  for i = math.max(1, #old - MAX_CA_STEPS + 2), #old do steps[#steps + 1] = old[i] end
  steps[#steps + 1] = { started = res.started, ended = res.ended, seconds = res.seconds, outcome = outcome }
  return steps
end

-- ca_failure tells the person, once, what a CA error means; the journal keeps the key and,
-- with the CA step's times, the pending state for the rerun. The CA's own message (a Go
-- error chain, in English) is kept for --debug and the transcript.
local function ca_failure(serial, err, steps, user_id)
  if names_user(err, user_id) then
    -- Typed, but not accepted: the rerun asks for it again and reuses the key.
    journal.record(serial, "requested", { ca_steps = steps, user_id_refused = user_id })
    journal.forget(serial, { "user_id" })
    return msg.fail(err.code, "enroll_user_id_refused", { user_id = user_id, reason = msg.reason(err) }, err.message)
  elseif err.code == "CA_PENDING" then
    journal.record(serial, "pending", { retry_after = err.retry_after, ca_steps = steps })
    return msg.fail("CA_PENDING", "enroll_pending", { seconds = err.retry_after or 60 }, err.message)
  end
  journal.record(serial, "requested", { ca_steps = steps })
  if err.code == "CA_UNAVAILABLE" then
    return msg.fail(err.code, "ca_unavailable", { reason = msg.reason(err) }, err.message)
  end
  return msg.fail(err.code, "ca_refused", { reason = msg.reason(err) }, err.message)
end

return {
  name = "enroll",
  version = "1.0.0",
  api = 1,
  -- The prompts it may ask: the contract with answers files, checked before the run starts
  -- (the README's table of prompt ids is generated from these).
  prompts = {
    { id = "validity", kind = "choice", choices_from = "validity" },
    { id = "user_id", kind = "text" },
    { id = "key_file", kind = "text" },
    { id = "otp_pin", kind = "secret" },
    { id = "pin_is_password", kind = "choice", choices = { "true", "false" }, note = "when false also `key_password`" },
    { id = "key_password", kind = "secret" },
    { id = "profile_name", kind = "text", optional = true },
    { id = "new_pin", kind = "secret" },
    { id = "new_pin_confirm", kind = "secret" },
    { id = "confirm", kind = "confirm" },
    { id = "current_pin", kind = "secret", optional = true,
      note = "left out or empty, the region's blank-token password is used" },
    { id = "switch_user", kind = "confirm",
      note = "a resumed registration whose answers name another user than the one it was started for" },
    { id = "pin_unknown_go_on", kind = "confirm", human_only = true,
      note = "after a run stopped during the password change with the outcome unknown" },
    { id = "token_pin_now", kind = "secret", note = "after `pin_unknown_go_on`" },
    { id = "final_try", kind = "confirm", human_only = true, note = "spending the last try of a PIN" },
  },
  description = "First registration: key pair on the token, certificate from the CA, new token password",
  run = function(ctx)
    local cfg = ctx.config
    local tok, info = tokens.find(ctx)
    if not tok then return nil, info end
    local serial = info.serial

    local entry = journal.load(serial)
    if entry and entry.procedure ~= "enroll" then entry = nil end

    -- A finished profile: certificates are public, so this needs no login (and spends no
    -- try of a password that is no longer the default). It says whose profile it is; answers
    -- that name another user stop the run (REFUSED): that user needs another token.
    if not entry then
      local certs = tok:certificates() or {}
      if #certs > 0 then
        local holder = cn(certs[1].subject) or certs[1].subject
        msg.say("enroll_profile_of_user", { holder = holder })
        msg.say("enroll_profile_present", { subject = certs[1].subject, valid_until = certs[1].not_after })
        if not ui.interactive() then
          local named = ui.ask { id = "user_id", label = msg.text("user_id_prompt",
            { example = cfg.user_id.example }), optional = true }
          if named ~= "" and named ~= holder then
            return msg.fail("REFUSED", "enroll_profile_other_user", { holder = holder, user_id = named })
          end
        end
        return { serial = serial, profile = certs[1].label, unchanged = true, holder = holder }
      end
    end
    if cfg.ca.roots == "" then
      return msg.fail("REFUSED", "ca_not_configured")
    end

    -- What the person types, all checked before the token is touched. A resumed run keeps
    -- what the key and request were made for, except what the CA refused (the user ID is then
    -- asked again) and what the answers correct before the CA accepted it.
    local data = entry and entry.data or {}
    local user_id, validity, label
    if entry then
      msg.say("enroll_resume", { date = entry.started })
      user_id, validity, label = data.user_id, find_validity(ctx, data.validity), data.label
      if past(entry, "pin_set") then
        -- Stopped after the password was changed: the profile is complete, and the token
        -- opens with the new password. No login: the default would be a wrong try.
        msg.say("enroll_password_already_set")
        journal.finish(serial)
        return { serial = serial, profile = label }
      end
      local issued = past(entry, "issued") or data.cert_pem ~= nil
      if not user_id then
        -- The CA refused the user ID typed last time: the rerun asks for it again.
        if data.user_id_refused then
          msg.warn("enroll_user_id_again", { user_id = data.user_id_refused })
        end
        user_id = input.user_id(ctx)
        journal.record(serial, entry.step, { user_id = user_id })
      else
        -- The user the answers (or the person) name, the journal's by default: another one on
        -- a half-done token is told what to do, never to format.
        local named = input.user_id(ctx, user_id)
        if named ~= user_id then
          if issued then
            return msg.fail("REFUSED", "enroll_other_user_issued", { journal_user = user_id, user_id = named })
          end
          msg.warn("enroll_other_user", { journal_user = user_id, user_id = named, date = entry.started })
          if not ui.confirm { id = "switch_user", label = msg.text("enroll_switch_user_confirm", { user_id = named }),
            default = false } then
            return msg.fail("REFUSED", "enroll_other_user_declined", { journal_user = user_id, user_id = named })
          end
          user_id = named
          journal.record(serial, entry.step, { user_id = user_id })
        end
      end
    else
      validity = find_validity(ctx, ui.choose { id = "validity", label = msg.text("validity_prompt"),
        choices = validity_choices(ctx) })
      user_id = input.user_id(ctx)
    end
    local auth
    if not past(entry, "issued") then
      local err
      auth, err = open_container(ctx, user_id)
      if not auth then return nil, err end
    end
    if not entry then
      local default = cfg.profile.default_name ~= "" and cfg.profile.default_name or user_id
      label = ui.ask { id = "profile_name", label = msg.text("token_name_prompt"), default = default }
    end
    local new_pin, pwerr = input.new_password(ctx)
    if not new_pin then return nil, pwerr end

    if not entry then
      msg.say("enroll_summary", { user_id = user_id, validity = validity.label, token = tokens.describe(info),
        token_name = label, ca_url = cfg.ca.url, minutes = msg.minutes(cfg.ca.timeout) })
      if not ui.confirm { id = "confirm", label = msg.text("enroll_confirm"), default = true } then
        return msg.fail("CANCELLED", "cancelled")
      end
    end

    -- The token's current password: what the answers file or the person gives, else the
    -- region's default for a blank token (not a secret: it is printed in the bank's guide).
    local default_pin = cfg.token.default_user_pin
    local current
    if default_pin == "" then
      current = ui.secret { id = "current_pin", label = msg.text("user_pin_prompt") }
    else
      current = ui.secret { id = "current_pin", label = msg.text("current_pin_prompt"), optional = true }
      if current == "" then current = default_pin end
    end
    -- Whether the blank token's password is what is tried (left out, or given as it is).
    local is_default = default_pin ~= "" and current == default_pin
    local pin_now = current
    if past(entry, "setting_pin") then
      -- Stopped during the password change: find out which password the token has.
      local which, typed = pin_after_stop(entry, info)
      if not which then return nil, typed end
      if which == "ask" then
        which, pin_now, is_default = typed == new_pin and "new" or "old", typed, false
      end
      if which == "new" then
        if pin_now == new_pin then
          local ok, err = tokens.login(tok, "user", new_pin)
          if not ok then return nil, err end
          tok:logout()
        end
        msg.say("enroll_password_already_set")
        journal.finish(serial)
        return { serial = serial, profile = label }
      end
    elseif is_default then
      msg.say("token_blank")
    end
    -- A person at a terminal who typed a wrong password is asked again (the counters are
    -- read before every try); the default refused means the token was used before.
    local ok, err
    for attempt = 1, input.TRIES do
      ok, err = tokens.login(tok, "user", pin_now)
      if ok then break end
      if err.code ~= "PIN_INCORRECT" then return nil, err end
      if is_default and not past(entry, "setting_pin") then
        msg.warn("token_default_pin_refused")
      end
      if not ui.interactive() or attempt == input.TRIES or past(entry, "setting_pin") then
        return nil, err
      end
      msg.say("try_again")
      pin_now = ui.secret { id = "current_pin", label = msg.text(default_pin == "" and "user_pin_prompt"
        or "current_pin_prompt"), optional = default_pin ~= "" }
      if pin_now == "" then pin_now = default_pin end
      is_default = default_pin ~= "" and pin_now == default_pin
    end
    current = pin_now

    if not entry then
      entry = journal.record(serial, "generating", { user_id = user_id, validity = validity.value, label = label })
    end
    local prof = tokens.profile(tok)
    local key = find_key(prof, entry, label)
    if key then
      msg.say("enroll_key_reused", { key_id = key.id })
    else
      local bar = ui.progress { id = "generate_key", label = msg.text("progress_generating_key") }
      local spec = {}
      for k, v in pairs(cfg.key) do spec[k] = v end
      spec.label = label
      local kerr
      key, kerr = tok:generate_key(spec)
      if not key then
        bar:done(false)
        return msg.fail(kerr.code, "enroll_interrupted", { reason = msg.reason(kerr) }, kerr.message)
      end
      bar:done(true)
    end
    entry = journal.record(serial, past(entry, "key_generated") and entry.step or "key_generated", { key_id = key.id })

    -- The certificate: on the token already, in the journal, or from the CA.
    local cert = has_cert(prof, key.id)
    if cert then
      msg.say("enroll_certificate_on_token")
    else
      local pem = entry.data.cert_pem
      if pem then
        msg.say("enroll_certificate_saved")
      else
        journal.record(serial, "requested")
        local bar = ui.progress { id = "request_certificate", label = msg.text("progress_contacting_ca") }
        local subject = { CN = user_id }
        for k, v in pairs(cfg.subject) do subject[k] = v end
        local csr = assert(ca.csr { key = key, subject = subject })
        -- Requests the CA received in full but never answered: it may hold certificates that
        -- never reached the token. Kept for support, across reruns, as each happens.
        local unanswered = entry.data.ca_unanswered or {}
        -- ca.timeout is one budget for this whole step: every attempt, retry and wait.
        local issued, cerr = ca.enroll {
          csr = csr, auth = auth, key = key, server = cfg.ca.url, roots = cfg.ca.roots,
          label = cfg.ca.label_from_validity and validity.value or nil,
          validity_years = validity.years, timeout = cfg.ca.timeout,
          -- Every wait before asking again, each second: the next attempt and the countdown
          -- (a GUI shows them). The CA asked to wait (202, Retry-After): a countdown people
          -- read too; the short waits between retries after a failure have no note.
          on_wait = function(w)
            bar:update {
              note = w.pending and msg.text("progress_ca_pending", { seconds = w.seconds }) or nil,
              attempt = w.attempt + 1, retry_in = w.seconds,
            }
          end,
          on_unanswered = function(a)
            unanswered[#unanswered + 1] = { op = a.op, attempt = a.attempt, sent = a.sent, failed = a.failed,
              reason = a.reason }
            journal.record(serial, "requested", { ca_unanswered = unanswered })
          end,
        }
        bar:done(issued ~= nil)
        local steps = ca_steps(entry.data, issued or cerr, issued and "issued" or cerr.code)
        if not issued then return ca_failure(serial, cerr, steps, user_id) end
        -- Kept before it goes to the token: a run stopped now still has it.
        pem = issued.pem
        journal.record(serial, "issued", { cert_pem = pem, ca_steps = steps })
      end
      local bar = ui.progress { id = "store_certificate", label = msg.text("progress_storing") }
      local serr
      cert, serr = tok:store_certificate(pem, { id = key.id, label = label })
      bar:done(cert ~= nil)
      if not cert then
        return msg.fail(serr.code, "enroll_interrupted", { reason = msg.reason(serr) }, serr.message)
      end
    end
    journal.record(serial, "stored")

    -- A test signature proves the key and certificate belong together and chain to the CA.
    local bar = ui.progress { id = "verify", label = msg.text("progress_verifying") }
    local data_to_sign = "tokenrun enrollment check " .. serial
    local sig, sgerr = sign.cms { key = key, cert = cert.pem, data = data_to_sign, detached = true }
    local verdict = sig and sign.verify { signature = sig, content = data_to_sign, roots = cfg.ca.roots }
    bar:done(verdict ~= nil and verdict.ok)
    if not (verdict and verdict.ok) then
      return msg.fail("CA_CERTIFICATE_REFUSED", "enroll_interrupted",
        { reason = msg.reason({ code = "CA_CERTIFICATE_REFUSED" }) }, sgerr and sgerr.message)
    end
    journal.record(serial, "verified")

    -- Last, the client's own password replaces the blank token's default.
    -- must_change: whether the token asked for its password to be changed; after the change it
    -- no longer does, which tells a rerun what happened if this run stops during it.
    journal.record(serial, "setting_pin", { must_change = info.flags.user_pin_to_be_changed == true })
    bar = ui.progress { id = "set_pin", label = msg.text("progress_setting_password") }
    local perr
    ok, perr = tok:set_pin(current, new_pin)
    bar:done(ok ~= nil)
    if not ok then
      return msg.fail(perr.code, "enroll_interrupted", { reason = msg.reason(perr) }, perr.message)
    end
    journal.record(serial, "pin_set")
    tok:logout()
    journal.finish(serial)
    msg.say("enroll_done", { token_name = label })
    return { serial = serial, profile = label, key_id = key.id, certificate_serial = cert.serial,
      not_after = cert.not_after }
  end,
}
