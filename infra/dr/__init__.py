"""Disaster recovery: a standby region, failover and failback with a measured RTO (``gantry dr``)."""
