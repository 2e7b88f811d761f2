"""CLI subcommands: each module exposes ``register(subparsers)`` (see memberline.cli)."""
