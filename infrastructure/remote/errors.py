class RemoteError(Exception):
    """Talking to a server failed. `permanent` errors need an operator; others may pass on retry."""

    permanent = False

    def __init__(self, message: str, *, permanent: bool | None = None):
        super().__init__(message)
        if permanent is not None:
            self.permanent = permanent


class Unreachable(RemoteError):
    """TCP connect or the SSH handshake timed out or was refused."""


class HostKeyNotTrusted(RemoteError):
    """No host key is pinned yet: an operator must trust the server first."""

    permanent = True


class HostKeyMismatch(RemoteError):
    """The server presented a key other than the pinned one. Nothing was sent or run.

    `offered` is the presented key as (type, base64, fingerprint), so the operator can compare it."""

    permanent = True

    def __init__(self, message: str, *, offered: tuple[str, str, str]):
        super().__init__(message)
        self.offered = offered


class AuthenticationError(RemoteError):
    """The server refused Berth's credential."""

    permanent = True
