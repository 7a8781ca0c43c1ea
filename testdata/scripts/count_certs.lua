-- Reports how many certificates the token holds (they are public: no login needed).
local token = require("token")
local ui = require("ui")
local tok = assert(token.wait { timeout = 1 })
ui.say("certificates: " .. #tok:certificates())
