-- luacheck configuration for the shipped scripts: only what the tokenrun sandbox offers.
-- Modules (token, ui, ...) are reached with require, so they are locals, never globals.
stds.tokenrun = {
  read_globals = {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "print", "rawequal", "rawget",
    "rawlen", "rawset", "select", "setmetatable", "getmetatable", "tonumber", "tostring",
    "type", "unpack", "xpcall", "_VERSION", "require",
    string = { fields = { "byte", "char", "find", "format", "gmatch", "gsub", "len", "lower",
      "match", "rep", "reverse", "sub", "upper" } },
    table = { fields = { "concat", "insert", "maxn", "remove", "sort", "unpack" } },
    math = { other_fields = true },
  },
}
std = "tokenrun"
max_line_length = 120
