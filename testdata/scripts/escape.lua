-- A script reaching outside the sandbox.
return os.execute("id")
