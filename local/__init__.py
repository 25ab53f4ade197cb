"""Local mode: the deployed API on this machine, with no AWS account (see local/README section in the top README)."""
