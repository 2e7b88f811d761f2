"""One screen per module: login, home, call (the pop), profile, wrap-up, search, supervisor screens."""
