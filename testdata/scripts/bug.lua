local token = require("token")
local t = token.wait { timeout = 1 }
return t:no_such_method()
