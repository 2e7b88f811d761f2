"""Widgets grouped by feature: status (state bar, hub banner), member (profile), charts."""
