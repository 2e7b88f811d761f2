"""dialer/fallback."""
