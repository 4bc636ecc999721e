"""Every state-changing operation on container servers: registration, credentials, identity (host key
trust), connection tests, health checks and the operator's drain / retire / activate.

Network work (tests, health checks) runs outside transactions; what it learned is then written in one
short transaction with its audit event. No function here logs or audits key material.
"""

import logging
from dataclasses import asdict, dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

import audit.services as audit
from audit.choices import Outcome

from . import credentials, crypto, remote
from .choices import CredentialKind, DockerEndpoint, ServerStatus
from .models import PlacementPolicy, Server, ServerConflict, ServerCredential, ServerTransitionConflict

logger = logging.getLogger(__name__)

# Non-secret server fields a registration may set.
SERVER_FIELDS = (
    "name", "host", "ssh_port", "ssh_user", "docker_endpoint", "docker_url", "storage_root", "region", "labels",
    "max_workspaces", "cpu_cores", "memory_mb", "expected_host_key_fingerprint",
)
# Health checks look at servers that are (or may come back) in service.
CHECKED_STATUSES = (ServerStatus.ACTIVE, ServerStatus.DRAINING, ServerStatus.OFFLINE)


# --- status -------------------------------------------------------------------------------------------

def _set_status(server: Server, new: str, *, actor, action: str, message: str = "", outcome=Outcome.SUCCESS) -> None:
    """Compare-and-set the status (see SERVER_TRANSITIONS) and audit it, in the caller's transaction."""
    old = server.status
    Server.check_transition(server, old, new)
    moved = Server.objects.filter(pk=server.pk, status=old).update(status=new, status_message=message[:500])
    if moved != 1:
        raise ServerTransitionConflict(server, old, new)
    server.status, server.status_message = new, message[:500]
    audit.record(actor=actor, action=action, target=server, outcome=outcome, message=message or f"{old} -> {new}",
                 change={"from": old, "to": new})


def _copy_state(source: Server, target: Server) -> None:
    """Services lock and reload the row; the caller's instance then shows the result too."""
    for field in Server._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))


def _forget_connections_on_commit(server: Server) -> None:
    transaction.on_commit(lambda: remote.forget_server(server.pk))


# --- registration and credentials ---------------------------------------------------------------------

def _validated_server(fields: dict) -> Server:
    unknown = set(fields) - set(SERVER_FIELDS)
    if unknown:
        raise ValidationError({name: "Unknown field." for name in sorted(unknown)})
    fields = dict(fields)
    if "expected_host_key_fingerprint" in fields:
        fields["expected_host_key_fingerprint"] = credentials.normalize_expected_fingerprint(
            fields["expected_host_key_fingerprint"]
        )
    server = Server(**fields)
    server.full_clean()
    return server


@transaction.atomic
def register_server(*, actor, fields: dict, ssh_key: dict | None = None, docker_tls: dict | None = None,
                    generate_key: bool = False) -> tuple[Server, str]:
    """Register a remote server as `unverified`. It needs an SSH key (given, or generated: then the
    returned public line goes into the server's authorized_keys) and, for a `tls` endpoint, an mTLS
    bundle. All input is validated before anything is stored. Returns (server, public key line)."""
    server = _validated_server(fields)
    if server.docker_endpoint == DockerEndpoint.LOCAL:
        raise ValidationError({"docker_endpoint": "Register the local engine with register_local_server."})
    if not ssh_key and not generate_key:
        raise ValidationError({"credential": "An SSH private key is required (or generate a key pair)."})
    if server.docker_endpoint == DockerEndpoint.TLS and not docker_tls:
        raise ValidationError({"docker_tls": "The tls endpoint needs the CA certificate, client certificate and key."})
    if server.docker_endpoint != DockerEndpoint.TLS and docker_tls:
        raise ValidationError({"docker_tls": "An mTLS bundle is used only with the tls endpoint."})
    key = credentials.validate_ssh_key(ssh_key["private_key"], ssh_key.get("passphrase", "")) if ssh_key else None
    bundle = credentials.validate_tls_bundle(**docker_tls) if docker_tls else None
    server.save()
    audit.record(actor=actor, action="server.register", target=server, change={
        name: str(getattr(server, name)) for name in SERVER_FIELDS
    })
    if generate_key:
        public_line = generate_key_pair(server, actor=actor)
    else:
        public_line = _store_ssh_key(server, key, ssh_key.get("passphrase", ""), actor=actor)
    if bundle is not None:
        _store_tls_bundle(server, bundle, docker_tls, actor=actor)
    return server, public_line


@transaction.atomic
def register_local_server(*, name: str, storage_root: str, actor) -> Server:
    """The Docker engine on the Berth host. No SSH and no host key: it goes `active` as soon as the
    engine answers a ping. Idempotent by name, so bootstrap may call it on every start."""
    existing = Server.objects.filter(name=name, docker_endpoint=DockerEndpoint.LOCAL).first()
    if existing is not None:
        return existing
    server = _validated_server({"name": name, "host": "localhost", "docker_endpoint": DockerEndpoint.LOCAL,
                                "storage_root": storage_root})
    server.save()
    audit.record(actor=actor, action="server.register", target=server, message="local engine")
    try:
        remote.docker_version(server)
    except remote.RemoteError as exc:  # it stays unverified; a later connection test can activate it
        Server.objects.filter(pk=server.pk).update(status_message=str(exc)[:500])
        return server
    _set_status(server, ServerStatus.ACTIVE, actor=actor, action="server.verified", message="Local engine answered.")
    return server


# Fields an operator may change after registration. Address, user and endpoint are fixed: the pinned
# identity belongs to them, so a different machine is registered as a new server.
UPDATABLE_FIELDS = ("name", "storage_root", "region", "labels", "max_workspaces", "cpu_cores", "memory_mb")


@transaction.atomic
def update_server(server: Server, *, actor, changes: dict) -> Server:
    """Apply the changes that differ from the stored row; nothing changed writes and audits nothing.
    Compared with the row, not the instance: the admin's form has already set its values on it."""
    refused = set(changes) - set(UPDATABLE_FIELDS)
    if refused:
        raise ValidationError({name: "This cannot change after registration; register a new server instead."
                               for name in sorted(refused)})
    stored = Server.objects.select_for_update().values(*changes).get(pk=server.pk) if changes else {}
    changed = {name: value for name, value in changes.items() if stored[name] != value}
    for name, value in changes.items():
        setattr(server, name, value)
    if not changed:
        return server
    server.full_clean()
    server.save(update_fields=list(changed))
    audit.record(actor=actor, action="server.update", target=server,
                 change={name: str(value) for name, value in changed.items()})
    return server


@transaction.atomic
def save_placement_policy(policy: PlacementPolicy, *, actor, changes: dict) -> PlacementPolicy:
    """Create or change a placement policy (a new one when `policy.pk` is None); a change that
    changes nothing writes nothing and is not audited."""
    created = policy.pk is None
    changed = {name: value for name, value in changes.items() if created or getattr(policy, name) != value}
    if not changed and not created:
        return policy
    for name, value in changed.items():
        setattr(policy, name, value)
    policy.full_clean()
    # Only what changed: the round-robin cursor moves with every placement, and this instance was
    # read when the form or request began.
    policy.save(update_fields=None if created else list(changed))
    audit.record(actor=actor, action="placement_policy.create" if created else "placement_policy.update",
                 target=policy, change={name: str(value) for name, value in changed.items()})
    return policy


@transaction.atomic
def delete_placement_policy(policy: PlacementPolicy, *, actor) -> None:
    audit.record(actor=actor, action="placement_policy.delete", target=policy)
    policy.delete()


def _upsert_credential(server: Server, kind: str) -> ServerCredential:
    credential = ServerCredential.objects.filter(server=server, kind=kind).first()
    return credential or ServerCredential(server=server, kind=kind)


def _store_ssh_key(server: Server, key, passphrase: str, *, actor) -> str:
    credential = _upsert_credential(server, CredentialKind.SSH_KEY)
    credential.set_secret("private_key", key.private_key)
    credential.set_secret("passphrase", passphrase)
    credential.public_key, credential.fingerprint, credential.expires_at = key.public_line, key.fingerprint, None
    credential.save()
    audit.record(actor=actor, action="server.credential_set", target=server,
                 message=f"SSH key {key.key_type} {key.fingerprint}", change={"kind": credential.kind,
                                                                            "fingerprint": key.fingerprint})
    _forget_connections_on_commit(server)
    return key.public_line


def _store_tls_bundle(server: Server, bundle, material: dict, *, actor) -> None:
    credential = _upsert_credential(server, CredentialKind.TLS_BUNDLE)
    credential.set_secret("client_key", material["client_key"])
    credential.ca_cert, credential.client_cert = material["ca_cert"].strip(), material["client_cert"].strip()
    credential.fingerprint, credential.expires_at = bundle.fingerprint, bundle.expires_at
    credential.save()
    audit.record(actor=actor, action="server.credential_set", target=server,
                 message=f"mTLS bundle {bundle.fingerprint}, expires {bundle.expires_at:%Y-%m-%d}",
                 change={"kind": credential.kind, "fingerprint": bundle.fingerprint})
    _forget_connections_on_commit(server)


@transaction.atomic
def set_ssh_key(server: Server, *, private_key: str, passphrase: str = "", actor) -> str:
    """Set or rotate the SSH key; returns its public line."""
    key = credentials.validate_ssh_key(private_key, passphrase)
    return _store_ssh_key(server, key, passphrase, actor=actor)


@transaction.atomic
def set_tls_bundle(server: Server, *, ca_cert: str, client_cert: str, client_key: str, actor) -> None:
    material = {"ca_cert": ca_cert, "client_cert": client_cert, "client_key": client_key}
    _store_tls_bundle(server, credentials.validate_tls_bundle(**material), material, actor=actor)


@transaction.atomic
def generate_key_pair(server: Server, *, actor) -> str:
    """A new ed25519 key kept encrypted; returns the public line for the server's authorized_keys."""
    return _store_ssh_key(server, crypto.generate_ssh_key_pair(), "", actor=actor)


@transaction.atomic
def issue_agent_api_key(server: Server, *, actor) -> str:
    """A key for a server-side agent. Only its digest is stored: the return value is the one copy."""
    raw, digest = credentials.new_agent_api_key()
    credential = _upsert_credential(server, CredentialKind.API_KEY)
    credential.api_key_digest, credential.fingerprint = digest, f"{raw[:16]}…"
    credential.save()
    audit.record(actor=actor, action="server.credential_set", target=server, message=f"agent API key {raw[:16]}…",
                 change={"kind": credential.kind})
    return raw


@transaction.atomic
def rotate_encryption_keys(*, actor=None) -> int:
    """Re-encrypt every stored secret under the primary (first) BERTH_ENCRYPTION_KEYS key, so older keys
    can then be removed. Rows are locked while rewritten; returns how many values changed."""
    changed = 0
    for credential in ServerCredential.objects.select_for_update().order_by("pk"):
        rewritten = []
        for field in ServerCredential.ENCRYPTED_FIELDS:
            stored = getattr(credential, f"encrypted_{field}")
            if stored and crypto.needs_rotation(stored):
                credential.set_secret(field, credential.get_secret(field))
                rewritten.append(f"encrypted_{field}")
        if rewritten:
            credential.save(update_fields=rewritten)
            changed += len(rewritten)
    audit.record(actor=actor, action="secrets.rotate", message=f"{changed} secret(s) re-encrypted under the primary key")
    return changed


# --- identity --------------------------------------------------------------------------------------------

def _pin(server: Server, key_type: str, key: str, fingerprint: str) -> None:
    Server.objects.filter(pk=server.pk).update(
        host_key_type=key_type, host_key=key, host_key_fingerprint=fingerprint,
        offered_host_key_type="", offered_host_key="", offered_host_key_fingerprint="",
    )
    server.host_key_type, server.host_key, server.host_key_fingerprint = key_type, key, fingerprint
    server.offered_host_key_type = server.offered_host_key = server.offered_host_key_fingerprint = ""


@transaction.atomic
def trust_host_key(server: Server, *, fingerprint: str, actor, test: bool = True) -> Server:
    """Pin the host key the server offered, after the operator compared its fingerprint out of band.
    Clears a host key mismatch (back to `unverified`); a connection test then makes it `active`."""
    caller, server = server, Server.objects.select_for_update().get(pk=server.pk)
    if not server.offered_host_key:
        raise ServerConflict("No host key is waiting for trust: run a connection test first.")
    if server.status not in (ServerStatus.UNVERIFIED, ServerStatus.HOST_KEY_MISMATCH):
        raise ServerConflict(f"Server {server} is {server.get_status_display().lower()}; its key is already pinned.")
    if (fingerprint or "").strip() != server.offered_host_key_fingerprint:
        raise ValidationError({"fingerprint": (
            "This is not the fingerprint of the key the server offered. Check the server's key out of band "
            "(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and run a new test if it changed."
        )})
    previous = server.host_key_fingerprint
    _pin(server, server.offered_host_key_type, server.offered_host_key, server.offered_host_key_fingerprint)
    audit.record(actor=actor, action="server.trust_host_key", target=server,
                 message=f"trusted {server.host_key_fingerprint}" + (f", replacing {previous}" if previous else ""),
                 change={"fingerprint": server.host_key_fingerprint, "previous": previous})
    if server.status == ServerStatus.HOST_KEY_MISMATCH:
        _set_status(server, ServerStatus.UNVERIFIED, actor=actor, action="server.mismatch_cleared",
                    message=f"Host key re-trusted: {server.host_key_fingerprint}.")
    _forget_connections_on_commit(server)
    if test:
        _enqueue_test(server, actor=actor)
    _copy_state(server, caller)
    return caller


def _enqueue_test(server: Server, *, actor, create_storage: bool = False) -> None:
    from .tasks import test_server_connection

    test_server_connection.delay_on_commit(server.pk, getattr(actor, "pk", None), create_storage)


@transaction.atomic
def request_connection_test(server: Server, *, actor, create_storage: bool = False) -> None:
    """Queue a connection test (a task with a hard time limit); its result lands on the server."""
    if server.status == ServerStatus.RETIRED:
        raise ServerConflict(f"Server {server} is retired: reactivate it first.")
    audit.record(actor=actor, action="server.test_requested", target=server,
                 message="create storage folder if missing" if create_storage else "")
    _enqueue_test(server, actor=actor, create_storage=create_storage)


# --- connection test -----------------------------------------------------------------------------------

@dataclass
class Step:
    """One line of a connection test: `result` is pass, fail, or new (a host key awaiting trust)."""

    name: str
    result: str
    message: str

    @property
    def ok(self) -> bool:
        return self.result == "pass"


class _Probe:
    """The network half of a connection test. It changes nothing in the database; `_record_test`
    stores what it found. A key matching the fingerprint given at registration is pinned in memory
    here (so authentication can proceed) and persisted, audited, by `_record_test`."""

    COMMAND_TIMEOUT = 15

    def __init__(self, server: Server, create_storage: bool):
        self.server = server
        self.create_storage = create_storage
        self.steps: list[Step] = []
        self.discovered: dict = {}
        self.offered: tuple[str, str, str] | None = None
        self.mismatch = False
        self.auto_trusted = False

    def add(self, name: str, result: str, message: str) -> bool:
        self.steps.append(Step(name, result, message))
        return result == "pass"

    def run(self) -> None:
        if not self.server.is_local and not (self.tcp() and self.host_key() and self.ssh_auth()):
            return
        self.docker()
        if self.storage():
            self.disk()
        self.cpu_and_memory()

    def command(self, argv: list[str]):
        return remote.run_command(self.server, argv, timeout=self.COMMAND_TIMEOUT)

    def tcp(self) -> bool:
        server = self.server
        try:
            remote.open_socket(server.host, server.ssh_port, remote.connect_timeout()).close()
        except remote.Unreachable as exc:
            return self.add("tcp", "fail", str(exc))
        return self.add("tcp", "pass", f"{server.host}:{server.ssh_port} accepts TCP connections.")

    def host_key(self) -> bool:
        server = self.server
        try:
            self.offered = remote.fetch_host_key(server.host, server.ssh_port, remote.connect_timeout())
        except remote.Unreachable as exc:
            return self.add("host_key", "fail", str(exc))
        key_type, key, fingerprint = self.offered
        if server.host_key:
            if key == server.host_key:
                return self.add("host_key", "pass", f"Host key matches the pinned {fingerprint}.")
            self.mismatch = True
            return self.add("host_key", "fail", (
                f"MISMATCH: the server presented {fingerprint}, but {server.host_key_fingerprint} is pinned. "
                "Nothing was sent. If the server was reinstalled, verify the new key out of band and trust it."
            ))
        expected = server.expected_host_key_fingerprint
        if expected and expected == fingerprint:
            server.host_key_type, server.host_key, server.host_key_fingerprint = self.offered
            self.auto_trusted = True
            return self.add("host_key", "pass", f"Host key {fingerprint} matches the fingerprint given at "
                                                "registration and is now pinned.")
        if expected:
            return self.add("host_key", "fail", f"The server presented {fingerprint}, not the expected {expected} "
                                                "given at registration.")
        return self.add("host_key", "new", (
            f"New host key {key_type} {fingerprint}. Compare it with `ssh-keygen -lf` of the server's host key "
            "file, then trust it to continue."
        ))

    def ssh_auth(self) -> bool:
        try:
            self.command(["true"])
        except remote.HostKeyMismatch as exc:
            self.mismatch, self.offered = True, exc.offered
            return self.add("ssh_auth", "fail", str(exc))
        except remote.RemoteError as exc:
            return self.add("ssh_auth", "fail", str(exc))
        key = self.server.credentials.filter(kind=CredentialKind.SSH_KEY).values_list("fingerprint", flat=True).first()
        return self.add("ssh_auth", "pass", f"Signed in as {self.server.ssh_user} with key {key}.")

    def docker(self) -> bool:
        try:
            version = remote.docker_version(self.server)
        except remote.RemoteError as exc:
            return self.add("docker", "fail", str(exc))
        self.discovered.update(docker_version=version.get("Version", ""), docker_api_version=version.get("ApiVersion", ""))
        return self.add("docker", "pass", f"Docker {version.get('Version')} answers (API {version.get('ApiVersion')}, "
                                          f"{self.server.get_docker_endpoint_display().lower()}).")

    def storage(self) -> bool:
        root = self.server.storage_root
        try:
            if self.command(["test", "-d", root]).exit_code != 0:
                if not self.create_storage:
                    return self.add("storage", "fail", f"{root} does not exist. Run the test again with "
                                                       "'create the storage folder' to create it.")
                made = self.command(["mkdir", "-p", "-m", "0755", "--", root])
                if made.exit_code != 0:
                    return self.add("storage", "fail", f"Cannot create {root}: {made.stderr.decode(errors='replace')[:200]}")
            if self.command(["test", "-w", root]).exit_code != 0:
                return self.add("storage", "fail", f"{root} exists but {self.server.ssh_user or 'Berth'} cannot write to it.")
        except remote.RemoteError as exc:
            return self.add("storage", "fail", str(exc))
        return self.add("storage", "pass", f"{root} exists and is writable.")

    def disk(self) -> bool:
        try:
            lines = self.command(["df", "-Pk", "--", self.server.storage_root]).stdout.decode().splitlines()
            free_mb = int(lines[1].split()[3]) // 1024
        except (remote.RemoteError, IndexError, ValueError) as exc:
            return self.add("disk", "fail", f"Cannot read free disk space: {exc}")
        self.discovered["disk_free_mb"] = free_mb
        return self.add("disk", "pass", f"{free_mb / 1024:.1f} GB free under {self.server.storage_root}.")

    def cpu_and_memory(self) -> None:
        try:
            cores = int(self.command(["nproc"]).stdout.decode().strip())
            meminfo = self.command(["cat", "/proc/meminfo"]).stdout.decode()
            memory_mb = int(next(line.split()[1] for line in meminfo.splitlines() if line.startswith("MemTotal:"))) // 1024
        except (remote.RemoteError, ValueError, StopIteration, IndexError) as exc:
            self.add("resources", "fail", f"Cannot read CPU and memory: {exc}")
            return
        self.discovered.update(cpu_cores=cores, memory_mb=memory_mb)
        self.add("cpu", "pass", f"{cores} CPU cores (capacity set to {self.server.cpu_cores}).")
        self.add("memory", "pass", f"{memory_mb} MB memory (capacity set to {self.server.memory_mb} MB).")


def test_connection(server: Server, *, actor, create_storage: bool = False) -> list[Step]:
    """Run the connection test now (tasks call this; the API and admin queue the task) and store it.
    A passing test activates an `unverified` or `offline` server; a changed host key marks it
    `host_key_mismatch`."""
    server.refresh_from_db()
    probe = _Probe(server, create_storage)
    probe.run()
    _record_test(server, probe, actor=actor)
    return probe.steps


test_connection.__test__ = False  # a service, not a pytest test


@transaction.atomic
def _record_test(server: Server, probe: _Probe, *, actor) -> None:
    locked = Server.objects.select_for_update().get(pk=server.pk)
    passed = all(step.ok for step in probe.steps)
    if probe.auto_trusted and not locked.host_key:
        _pin(locked, *probe.offered)
        audit.record(actor=actor, action="server.trust_host_key", target=locked,
                     message=f"trusted {locked.host_key_fingerprint}: it matches the fingerprint given at registration",
                     change={"fingerprint": locked.host_key_fingerprint})
    elif probe.offered and probe.offered[1] != locked.host_key:
        locked.offered_host_key_type, locked.offered_host_key, locked.offered_host_key_fingerprint = probe.offered
    locked.last_test = [asdict(step) | {"ok": step.ok} for step in probe.steps]
    locked.last_test_at = timezone.now()
    locked.discovered = {**locked.discovered, **probe.discovered}
    if passed:
        locked.consecutive_failures = 0
    locked.save(update_fields=["offered_host_key_type", "offered_host_key", "offered_host_key_fingerprint",
                               "last_test", "last_test_at", "discovered", "consecutive_failures"])
    failed = next((step for step in probe.steps if not step.ok), None)
    audit.record(actor=actor, action="server.test", target=locked, outcome=Outcome.SUCCESS if passed else Outcome.FAILURE,
                 message=failed.message if failed else "all steps passed")
    if probe.mismatch:
        _mark_mismatch(locked, actor=actor, message=failed.message if failed else "host key mismatch")
    elif passed and locked.status in (ServerStatus.UNVERIFIED, ServerStatus.OFFLINE):
        _set_status(locked, ServerStatus.ACTIVE, actor=actor, action="server.verified",
                    message="Connection test passed.")
    _forget_connections_on_commit(locked)
    _copy_state(locked, server)


def _mark_mismatch(server: Server, *, actor, message: str) -> None:
    if server.status in (ServerStatus.HOST_KEY_MISMATCH, ServerStatus.RETIRED):
        return
    _set_status(server, ServerStatus.HOST_KEY_MISMATCH, actor=actor, action="server.host_key_mismatch",
                outcome=Outcome.FAILURE, message=message)
    logger.warning("Host key mismatch on server %s: %s", server.name, message)


# --- health ----------------------------------------------------------------------------------------------

def check_server_health(server: Server) -> bool:
    """One health check: the storage folder over the pinned connection, then a Docker ping. After
    BERTH_SERVER_FAILURES_BEFORE_OFFLINE failures in a row an active server goes offline; a passing
    check brings an offline server back."""
    mismatch, offered, message = False, None, ""
    try:
        if remote.run_command(server, ["test", "-d", server.storage_root], timeout=15).exit_code != 0:
            raise remote.RemoteError(f"Storage folder {server.storage_root} is missing.")
        remote.docker_version(server)
    except remote.HostKeyMismatch as exc:
        mismatch, offered, message = True, exc.offered, str(exc)
    except remote.RemoteError as exc:
        message = str(exc)
    _record_health(server, ok=not message, message=message, mismatch=mismatch, offered=offered)
    return not message


@transaction.atomic
def _record_health(server: Server, *, ok: bool, message: str, mismatch: bool, offered) -> None:
    locked = Server.objects.select_for_update().get(pk=server.pk)
    now = timezone.now()
    if mismatch:
        locked.offered_host_key_type, locked.offered_host_key, locked.offered_host_key_fingerprint = offered
        locked.last_checked_at = now
        locked.save(update_fields=["offered_host_key_type", "offered_host_key", "offered_host_key_fingerprint",
                                   "last_checked_at"])
        _mark_mismatch(locked, actor=None, message=message)
    elif ok:
        Server.objects.filter(pk=locked.pk).update(consecutive_failures=0, last_checked_at=now)
        if locked.status == ServerStatus.OFFLINE:
            _set_status(locked, ServerStatus.ACTIVE, actor=None, action="server.online", message="Health check passed.")
    else:
        Server.objects.filter(pk=locked.pk).update(consecutive_failures=F("consecutive_failures") + 1,
                                                   last_checked_at=now, status_message=message[:500])
        locked.refresh_from_db(fields=["consecutive_failures"])
        if (locked.status == ServerStatus.ACTIVE
                and locked.consecutive_failures >= settings.BERTH_SERVER_FAILURES_BEFORE_OFFLINE):
            _set_status(locked, ServerStatus.OFFLINE, actor=None, action="server.offline", outcome=Outcome.FAILURE,
                        message=f"{locked.consecutive_failures} health checks failed in a row: {message}")
    server.refresh_from_db()


# --- operator actions ------------------------------------------------------------------------------------

@transaction.atomic
def drain_server(server: Server, *, actor) -> Server:
    """Stop placing new workspaces here; running ones stay."""
    _set_status(server, ServerStatus.DRAINING, actor=actor, action="server.drain", message="Drained by an operator.")
    return server


@transaction.atomic
def retire_server(server: Server, *, actor) -> Server:
    """Take the server out of service for good. Refused while workspaces still hold reservations on it."""
    live = server.placements.filter(released=False).count()
    if live:
        raise ServerConflict(f"{live} workspace(s) still live on {server}: drain it and move or delete them first.")
    _set_status(server, ServerStatus.RETIRED, actor=actor, action="server.retire", message="Retired by an operator.")
    _forget_connections_on_commit(server)
    return server


@transaction.atomic
def reactivate_server(server: Server, *, actor) -> Server:
    """Undo a drain at once; a retired server goes back through verification (a connection test)."""
    if server.status == ServerStatus.DRAINING:
        _set_status(server, ServerStatus.ACTIVE, actor=actor, action="server.activate", message="Reactivated by an operator.")
    elif server.status == ServerStatus.RETIRED:
        _set_status(server, ServerStatus.UNVERIFIED, actor=actor, action="server.activate",
                    message="Reactivated: waiting for a passing connection test.")
        _enqueue_test(server, actor=actor)
    elif server.status in (ServerStatus.UNVERIFIED, ServerStatus.OFFLINE):
        audit.record(actor=actor, action="server.activate", target=server, message="connection test requested")
        _enqueue_test(server, actor=actor)
    else:
        raise ServerConflict(
            "Trust the server's current host key first." if server.status == ServerStatus.HOST_KEY_MISMATCH
            else f"Server {server} is already active."
        )
    return server
