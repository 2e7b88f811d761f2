"""AMI connection: byte framing, typed messages and the hardened client."""
