-- Never ends: the run's deadline must stop it.
while true do end
