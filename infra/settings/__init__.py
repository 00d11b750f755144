"""Config-layer settings models that ``infra.config`` embeds (rollout defaults and per-service overrides)."""
