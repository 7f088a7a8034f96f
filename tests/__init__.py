import os

# moto would load its catalogue of public AMIs (seconds per account and region); tests use
# their own image ids instead.
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
