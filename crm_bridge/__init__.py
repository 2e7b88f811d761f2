"""crm_bridge."""
