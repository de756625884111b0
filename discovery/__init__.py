"""Cluster membership: which engine addresses are in the cluster, picked by URL scheme."""
from discovery.base import Discovery, DiscoveryError, HealthCheck
from discovery.urls import from_url

__all__ = ["Discovery", "DiscoveryError", "HealthCheck", "from_url"]
