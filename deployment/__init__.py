"""The deployment model: what a deployment is (settings, models and their catalog, hosting modes, container images,
regions, alarm thresholds, the settings reference), read and checked without the CDK. The stack (stacks/) builds it;
ops/ (preflight, cost, smoke, deploy), local mode and the docs read it without starting the CDK's node kernel."""
