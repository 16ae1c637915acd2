"""Glue for running ownbase on AWS: the container entry point and the Lambda handler.

Nothing here is imported by the services; it only turns what ECS/Lambda hand a process
(secret JSON, cgroup limits, API Gateway events) into the usual ``OWNBASE_*`` settings.
"""
