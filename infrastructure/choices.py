from django.db import models


class DockerEndpoint(models.TextChoices):
    SSH = "ssh", "Through the SSH connection"
    TLS = "tls", "TCP with mutual TLS"
    LOCAL = "local", "Local engine on the Berth host"


class ServerStatus(models.TextChoices):
    UNVERIFIED = "unverified", "Unverified"
    ACTIVE = "active", "Active"
    DRAINING = "draining", "Draining"
    OFFLINE = "offline", "Offline"
    HOST_KEY_MISMATCH = "host_key_mismatch", "Host key mismatch"
    RETIRED = "retired", "Retired"


class CredentialKind(models.TextChoices):
    SSH_KEY = "ssh_key", "SSH private key"
    TLS_BUNDLE = "tls_bundle", "mTLS bundle"
    API_KEY = "api_key", "API key"


class PlacementStrategy(models.TextChoices):
    LEAST_LOADED = "least_loaded", "Least loaded"
    ROUND_ROBIN = "round_robin", "Round robin"
    REGION = "region", "Region (preferred first, then fallback)"
