"""``memberline bench <name>``: each module exposes ``register(subparsers)``; output is one JSON object."""
