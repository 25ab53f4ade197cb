"""Local mode: the deployed API on this machine, with no AWS account (docs/local.md)."""
