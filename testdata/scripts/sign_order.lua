-- Signs one payment order with the key labelled "payments" and checks the signature:
-- the shape of a signing procedure, for the CLI test that module sign is registered.
local token = require("token")
local sign = require("sign")
local ui = require("ui")

return {
  name = "sign_order",
  version = "1.0.0",
  api = 1,
  description = "Sign a payment order with the token's payments key",
  run = function()
    local tok, err = token.wait { timeout = 5 }
    if not tok then
      return nil, err
    end
    local ok, lerr = tok:login(ui.secret { id = "current_pin", label = "Token password" })
    if not ok then
      return nil, lerr
    end
    local key
    for _, k in ipairs(tok:keys()) do
      if k.label == "payments" then
        key = k
      end
    end
    local order = '<PaymentOrder amount="100.00"/>\n'
    local p7, serr = sign.cms { key = key, data = order }
    if not p7 then
      return nil, serr
    end
    local v = assert(sign.verify { signature = p7, content = order })
    ui.say(("signed: signature %s, content %s, signer %s"):format(
      tostring(v.signature_valid), tostring(v.content_matches), v.subject))
    tok:logout()
  end,
}
