"""The ownbase AWS CDK app: one config (config.py), one stack per part of the architecture."""
