"""The Checkov bridge: rendered Pulumi graphs translated for Checkov's frameworks, and its results mapped back.

``translate`` builds Terraform JSON, ARM and Kubernetes manifests; ``runner`` runs Checkov on them in its
own interpreter; ``catalog`` holds the curated levels and the one Gantry/Checkov alias table; ``findings``
turns Checkov's records into the engine's findings. Called by ``policies.engine`` and ``policies.crossguard``.
"""
