"""The one boundary to container servers: every paramiko and docker SDK call lives in this package.

Callers use only these functions and errors:
- ``docker_client(server)``: a docker.DockerClient whose transport Berth verified itself (pinned SSH
  host key, or mTLS against the registered CA, or the local engine), with timeouts on every call.
- ``run_command(server, argv, stdin=b"", timeout=60)``: run an argument list on the server (over the
  pinned SSH connection, or locally for the local engine). argv is quoted, never a shell string.
- errors: RemoteError (``.permanent`` says whether a retry can help) and its subclasses.
"""

from .errors import AuthenticationError, HostKeyMismatch, HostKeyNotTrusted, RemoteError, Unreachable
from .connections import CommandResult, docker_client, run_command

__all__ = [
    "AuthenticationError",
    "CommandResult",
    "HostKeyMismatch",
    "HostKeyNotTrusted",
    "RemoteError",
    "Unreachable",
    "docker_client",
    "run_command",
]
