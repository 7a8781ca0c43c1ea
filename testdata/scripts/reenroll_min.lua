-- Renewal: a new certificate for the profile key, authenticated by the current one.
local token = require("token")
local ui = require("ui")
local ca = require("ca")

local tok = assert(token.wait { timeout = 5 })
assert(tok:login(ui.secret { id = "current_pin", label = "Token password" }))
local current
for _, c in ipairs(tok:certificates()) do
  if c.label == "profile" then current = c end
end
assert(current, "no profile certificate")
local key
for _, k in ipairs(tok:keys()) do
  if k.id == current.id then key = k end
end
assert(key, "no key next to the profile certificate")
local csr = assert(ca.csr { key = key, subject = { CN = current.subject:match("CN=([^,]+)"), C = "KZ" } })
local cert, err = ca.reenroll {
  csr = csr, key = key, cert = current.pem,
  server = ui.ask { id = "ca_url" }, roots = ui.ask { id = "ca_roots" }, timeout = 10,
}
if not cert then return nil, err end
assert(tok:store_certificate(cert.der, { id = key.id, label = "profile" }))
ui.say("renewed: serial " .. current.serial .. " -> " .. cert.serial)
