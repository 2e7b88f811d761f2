"""Command handlers, one module per area; the table is in :mod:`cti.hub.dispatch`."""
