import subprocess
from dataclasses import dataclass

import docker

from ..choices import DockerEndpoint
from .errors import RemoteError

DOCKER_API_VERSION = "1.41"
DOCKER_TIMEOUT = 60


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


def docker_client(server) -> docker.DockerClient:
    if server.docker_endpoint == DockerEndpoint.LOCAL:
        client = docker.DockerClient(base_url="unix:///var/run/docker.sock", version=DOCKER_API_VERSION, timeout=DOCKER_TIMEOUT)
        client.api.trust_env = False
        return client
    raise RemoteError(f"docker endpoint {server.docker_endpoint!r} is not implemented yet", permanent=True)


def run_command(server, argv: list[str], *, stdin: bytes = b"", timeout: float = 60) -> CommandResult:
    if server.docker_endpoint == DockerEndpoint.LOCAL:
        try:
            done = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RemoteError(f"{argv[0]}: {exc}") from exc
        return CommandResult(done.returncode, done.stdout, done.stderr)
    raise RemoteError("SSH commands are not implemented yet", permanent=True)
