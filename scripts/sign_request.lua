-- Procedure 5: sign what a web page asks (tokenrun agent, NCALayer's protocol), with the
-- client's consent on the client's side. The host has already checked the page's origin
-- against the region, the sizes and the rate; it hands this run the documents, whose content
-- the script never sees (sign.documents()), and shows their previews in the consent page
-- itself. This script decides what the client is told, which certificate signs, and asks.
-- ctx.args: operation ("sign" or "key_info"), origin, method, attached, digested,
-- ext_key_usage (OIDs the certificate must hold), documents ({index, size, sha256} each).
local sign = require("sign")
local ui = require("ui")
local msg = require("lib.msg")
local tokens = require("lib.tokens")

-- has_all reports whether list holds every value of wanted.
local function has_all(list, wanted)
  local set = {}
  for _, v in ipairs(list) do set[v] = true end
  for _, v in ipairs(wanted) do
    if not set[v] then return false end
  end
  return true
end

-- certificate finds the certificate to sign with: the first on the token whose extended
-- key usage holds every OID the page asked for (a page asking for none takes any).
-- Certificates are public: this needs no login.
local function certificate(tok, wanted)
  for _, c in ipairs(tok:certificates() or {}) do
    if #wanted == 0 or has_all(c.ext_key_usage or {}, wanted) then
      return c
    end
  end
  return nil
end

-- key_for is the private key next to cert (the same id); it shows after the login.
local function key_for(tok, cert)
  for _, k in ipairs(tok:keys() or {}) do
    if k.id == cert.id then return k end
  end
  return nil
end

-- purpose names the OIDs a page asked for, for the message that none fits.
local function purpose(wanted)
  if #wanted == 0 then return "-" end
  return table.concat(wanted, ", ")
end

return {
  name = "sign_request",
  version = "1.0.0",
  api = 1,
  prompts = {
    { id = "sign_confirm", kind = "confirm", note = "the client's consent to what the page asks" },
    { id = "current_pin", kind = "secret" },
    { id = "final_try", kind = "confirm", human_only = true, note = "spending the last try of a PIN" },
  },
  description = "Sign the documents a web page asks to sign, once the client has confirmed",
  run = function(ctx)
    local req = ctx.args
    local wanted = req.ext_key_usage or {}
    local docs = sign.documents()
    if req.operation ~= "key_info" and #docs == 0 then
      return msg.fail("INVALID_INPUT", "sign_request_nothing")
    end

    local tok, info = tokens.find(ctx)
    if not tok then return nil, info end
    local cert = certificate(tok, wanted)
    if not cert then
      return msg.fail("NO_CERTIFICATE", "sign_request_no_certificate", { purpose = purpose(wanted) })
    end
    local who = { subject = cert.subject, serial = cert.serial, not_after = cert.not_after }

    if req.operation == "key_info" then
      -- The page learns who the client is: that is worth a question too.
      msg.say("sign_request_key_info", { origin = req.origin })
      msg.say("sign_request_certificate", who)
      local question = msg.text("sign_request_key_info_confirm", { origin = req.origin })
      if not ui.confirm { id = "sign_confirm", label = question, default = false } then
        return msg.fail("CANCELLED", "sign_request_declined")
      end
      return { certificate = cert.pem, key_id = cert.id, certificate_serial = cert.serial }
    end

    local total = 0
    for _, d in ipairs(docs) do total = total + d.size end
    msg.say("sign_request_from", { origin = req.origin, count = #docs, bytes = total })
    for _, d in ipairs(docs) do
      if d.digested then
        msg.say("sign_request_digest", { index = d.index, sha256 = d.sha256 })
      else
        msg.say("sign_request_document", { index = d.index, bytes = d.size, sha256 = d.sha256 })
      end
    end
    msg.say(req.attached and "sign_request_attached" or "sign_request_detached")
    msg.say("sign_request_certificate", who)
    local question = msg.text("sign_request_confirm", { origin = req.origin, count = #docs })
    if not ui.confirm { id = "sign_confirm", label = question, default = false } then
      return msg.fail("CANCELLED", "sign_request_declined")
    end

    local ok, err = tokens.check(tok, "user")
    if not ok then return nil, err end
    local pin = ui.secret { id = "current_pin", label = msg.text("user_pin_prompt") }
    ok, err = tokens.login(tok, "user", pin)
    if not ok then return nil, err end
    local key = key_for(tok, cert)
    if not key then
      tok:logout()
      return msg.fail("NO_CERTIFICATE", "sign_request_no_key", who)
    end
    for _, d in ipairs(docs) do
      local done, serr = sign.cms { key = key, document = d, detached = not req.attached }
      if not done then
        tok:logout()
        return nil, serr -- the host shows the catalog's text for the code
      end
    end
    tok:logout()
    msg.say("sign_request_done", { origin = req.origin, count = #docs })
    return { signed = #docs, certificate_serial = cert.serial, key_id = key.id }
  end,
}
