"""Server and placement-policy serializers. Key material is write-only: it is validated here (errors
name the nested field, e.g. credential.private_key) and never appears in a response."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from config.api import RejectUnknownFieldsMixin, StrictModelSerializer

from .. import credentials
from ..choices import DockerEndpoint
from ..models import PlacementPolicy, Server, ServerCredential
from ..services import UPDATABLE_FIELDS

_PEM_MAX = 20_000


def _secret_field(**kwargs) -> serializers.CharField:
    return serializers.CharField(write_only=True, trim_whitespace=False, max_length=_PEM_MAX,
                                 style={"input_type": "password"}, **kwargs)


def _as_drf(exc: DjangoValidationError) -> serializers.ValidationError:
    return serializers.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)


class SSHCredentialInputSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """`{"kind": "ssh_key", "private_key", "passphrase"?}`, or `{"kind": "generate"}` for a new ed25519
    key pair whose public line the response returns once."""

    kind = serializers.ChoiceField(choices=["ssh_key", "generate"], error_messages={
        "invalid_choice": 'Credential kind must be "ssh_key" (with private_key) or "generate".'})
    private_key = _secret_field(required=False)
    passphrase = _secret_field(required=False, allow_blank=True)

    def validate(self, attrs):
        if attrs["kind"] == "generate":
            if "private_key" in attrs or "passphrase" in attrs:
                raise serializers.ValidationError({"private_key": "Leave it out when Berth generates the key."})
            return attrs
        if not attrs.get("private_key"):
            raise serializers.ValidationError({"private_key": "Paste the private key."})
        try:
            credentials.validate_ssh_key(attrs["private_key"], attrs.get("passphrase", ""))
        except DjangoValidationError as exc:
            raise _as_drf(exc) from None
        return attrs


class DockerTLSInputSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    ca_cert = _secret_field()
    client_cert = _secret_field()
    client_key = _secret_field()

    def validate(self, attrs):
        try:
            credentials.validate_tls_bundle(**attrs)
        except DjangoValidationError as exc:
            raise _as_drf(exc) from None
        return attrs


class CredentialSummarySerializer(serializers.ModelSerializer):
    """What may be shown about a credential: never the secret, only that it is set and how to recognise it."""

    expires_soon = serializers.BooleanField(read_only=True)

    class Meta:
        model = ServerCredential
        fields = ["kind", "fingerprint", "public_key", "expires_at", "expires_soon", "created_at"]
        read_only_fields = fields


_STATE_FIELDS = [
    "status", "status_message", "host_key_fingerprint", "offered_host_key_fingerprint", "last_test", "last_test_at",
    "last_checked_at", "consecutive_failures", "discovered", "reserved_workspaces", "reserved_cpu",
    "reserved_memory_mb", "credentials", "created_at",
]


class ServerSerializer(StrictModelSerializer):
    docker_endpoint = serializers.ChoiceField(choices=DockerEndpoint.choices, default=DockerEndpoint.SSH, error_messages={
        "invalid_choice": 'docker_endpoint must be "ssh", "tls" (tcp://host:2376 with mutual TLS) or "local"; '
                          "plain tcp:// without TLS is refused."})
    expected_host_key_fingerprint = serializers.CharField(
        required=False, allow_blank=True, max_length=4000,
        help_text="SHA256:... (as ssh-keygen -lf prints it) or a known_hosts line; stored as the fingerprint.")
    credential = SSHCredentialInputSerializer(write_only=True, required=False)
    docker_tls = DockerTLSInputSerializer(write_only=True, required=False)
    credentials = CredentialSummarySerializer(many=True, read_only=True)

    class Meta:
        model = Server
        fields = [
            "id", "name", "host", "ssh_port", "ssh_user", "docker_endpoint", "docker_url", "storage_root", "region",
            "labels", "max_workspaces", "cpu_cores", "memory_mb", "expected_host_key_fingerprint",
            "credential", "docker_tls", *_STATE_FIELDS,
        ]
        read_only_fields = _STATE_FIELDS

    def validate_expected_host_key_fingerprint(self, value):
        try:
            return credentials.normalize_expected_fingerprint(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict["expected_host_key_fingerprint"]) from None

    def validate(self, attrs):
        if self.instance is not None:
            refused = set(attrs) - set(UPDATABLE_FIELDS) - {"credential", "docker_tls"}
            if refused:
                raise serializers.ValidationError({name: "This cannot change after registration; register a new "
                                                         "server instead." for name in sorted(refused)})
        attrs = super().validate(attrs)
        endpoint = attrs.get("docker_endpoint", getattr(self.instance, "docker_endpoint", DockerEndpoint.SSH))
        if self.instance is None and endpoint != DockerEndpoint.LOCAL and "credential" not in attrs:
            raise serializers.ValidationError({"credential": 'An SSH key is required: {"kind": "ssh_key", '
                                                             '"private_key": "..."} or {"kind": "generate"}.'})
        if endpoint == DockerEndpoint.TLS and self.instance is None and "docker_tls" not in attrs:
            raise serializers.ValidationError({"docker_tls": "The tls endpoint needs ca_cert, client_cert and client_key."})
        if endpoint != DockerEndpoint.TLS and "docker_tls" in attrs:
            raise serializers.ValidationError({"docker_tls": "An mTLS bundle is used only with the tls endpoint."})
        return attrs


class TrustHostKeySerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    fingerprint = serializers.CharField(max_length=80, help_text="SHA256:... as ssh-keygen -lf prints it.")


class ConnectionTestSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    create_storage = serializers.BooleanField(default=False, help_text="Create storage_root when it is missing.")


class PlacementPolicySerializer(StrictModelSerializer):
    class Meta:
        model = PlacementPolicy
        fields = ["id", "name", "strategy", "preferred_regions", "label_selector", "is_default"]

    def validate_preferred_regions(self, value):
        if not isinstance(value, list) or not all(isinstance(region, str) for region in value):
            raise serializers.ValidationError('Give a list of region names, e.g. ["eu", "us"].')
        return value
