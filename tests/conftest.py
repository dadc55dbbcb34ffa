"""Settings every test process needs before any SDK is imported."""
import os

# alibabacloud-credentials reads this once, at import: without it, a test that runs the default
# credential chain with no keys set would ask the ECS metadata service, an address off this machine.
os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
