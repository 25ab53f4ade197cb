"""Operating a deployment: preflight before deploying, deploy and destroy wrappers, smoke test, logs."""
