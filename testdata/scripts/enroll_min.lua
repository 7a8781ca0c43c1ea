-- The enrollment core, without the procedure's interlocks (issue 4 adds those): initial key,
-- key pair on the token, request, EST enrollment, checks, certificate stored next to its key.
local token = require("token")
local ui = require("ui")
local ca = require("ca")

local key_file = ui.ask { id = "key_file", label = "Initial key container" }
local otp = ui.secret { id = "otp_pin", label = "OTP PIN" }
local auth, err = ca.load_pkcs12(key_file, otp)
if not auth then return nil, err end

local tok = assert(token.wait { timeout = 5 })
local ok, lerr = tok:login(ui.secret { id = "current_pin", label = "Token password" })
if not ok then return nil, lerr end

local key = assert(tok:generate_key { type = ui.ask { id = "key_type", default = "ec" }, label = "profile" })
local csr = assert(ca.csr { key = key, subject = { CN = auth.common_name, C = "KZ" } })
local cert, cerr = ca.enroll {
  csr = csr, auth = auth, key = key, validity_years = 1,
  server = ui.ask { id = "ca_url" }, roots = ui.ask { id = "ca_roots" }, label = "1y", timeout = 10,
}
if not cert then return nil, cerr end
assert(tok:store_certificate(cert.der, { id = key.id, label = "profile" }))
ui.say("enrolled " .. cert.subject .. " serial " .. cert.serial)
return key.id
