"""agent_tui."""
