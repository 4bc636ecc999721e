"""API conventions shared by every app: JSON errors with a message, tenant-scoped viewsets,
serializers that refuse unknown fields and run the model's validation."""

import copy
import time

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponsePermanentRedirect, JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, parsers, serializers, status, throttling
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.settings import api_settings

from . import counters


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The object is not in a state that allows this."
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The payload is too large."
    default_code = "too_large"


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The object changed since you read it."
    default_code = "precondition_failed"


def content_length(request) -> int:
    """The declared body length; 0 when absent or malformed, as Django and DRF read it."""
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


def refuse_oversized_body(parser_context) -> None:
    """413 for a body longer than DATA_UPLOAD_MAX_MEMORY_SIZE, before a byte is read. For parsers that
    read the request stream themselves: Django's own check guards only `request.body`, which DRF
    reads for JSON and forms (RequestDataTooBig, answered 413 by `exception_handler`)."""
    request = (parser_context or {}).get("request")
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if request is not None and limit is not None and content_length(request) > limit:
        raise PayloadTooLarge(f"The request body is over the {limit} byte limit.")


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with nesting too deep for Python's json module (a RecursionError, not a
    ValueError) a 400 instead of a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the JSON is nested too deeply.") from None


def exception_handler(exc, context):
    """Every error is JSON with a `detail` message; Django's own exceptions map to 400/403/404/413."""
    # Imported here: rest_framework.views loads DEFAULT_PARSER_CLASSES (this module's JSONParser) as it
    # is imported, so importing it at the top fails whenever this module is the first to load it.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(f"The request body is over the {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} byte limit.")
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" not in response.data:
        response.data = {"detail": "Invalid input.", "errors": response.data}
    elif response is not None and isinstance(response.data, list):
        response.data = {"detail": " ".join(str(item) for item in response.data)}
    return response


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """Every path under /api/ that no route matches: a JSON 404, for every method, instead of
    Django's HTML page. This route matches everything, so CommonMiddleware's APPEND_SLASH no longer
    sees those 404s; a GET that only lacks the trailing slash is still redirected, and any other
    method is told the right URL (a redirected POST would lose its body)."""
    if _only_lacks_slash(request.path_info):
        if request.method in ("GET", "HEAD"):
            return HttpResponsePermanentRedirect(request.get_full_path(force_append_slash=True))
        detail = f"Not found: {request.path} (did you mean {request.path}/?)"
    else:
        detail = f"Not found: {request.path}"
    return JsonResponse({"detail": detail}, status=status.HTTP_404_NOT_FOUND)


def _only_lacks_slash(path: str) -> bool:
    """Whether `path` + "/" is a real route (not this catch-all)."""
    if path.endswith("/"):
        return False
    try:
        return resolve(path + "/").url_name != "api-not-found"
    except Resolver404:
        return False


class PerUserRateThrottle(throttling.BaseThrottle):
    """At most BERTH_API_RATE_LIMIT API requests per clock minute per signed-in person (token or
    session; 0 turns it off): beyond it a 429 with Retry-After, so one runaway script cannot take
    the API from everyone else. Counted per clock minute in the shared cache (an add and an
    increment per request, instead of DRF's per-user list of timestamps), so a burst across a
    minute's end may reach twice the limit. With the cache down every request is let through,
    after the cache's timeouts, as for every other cache use. Anonymous requests are not counted:
    the API answers them 401 (the schema and its docs are public)."""

    def allow_request(self, request, view):
        limit = settings.BERTH_API_RATE_LIMIT
        if not limit or not request.user.is_authenticated:
            return True
        now = time.time()
        count = counters.count(f"api-rate:{request.user.pk}:{int(now // 60)}", expires_in=120)
        self.retry_after = 60 - now % 60
        return count is None or count <= limit

    def wait(self):
        return self.retry_after


class Pagination(LimitOffsetPagination):
    """limit/offset pages (PAGE_SIZE by default) that no `limit` can make unbounded."""

    max_limit = 500


def error(message: str, code: int = status.HTTP_400_BAD_REQUEST, **extra) -> Response:
    return Response({"detail": message, **extra}, status=code)


class VisibleToUserMixin:
    """Tenant scoping applied once: every queryset passes through `Model.objects.visible_to(user)`,
    so another organization's object is simply not found (404), never 403."""

    def get_queryset(self):
        return super().get_queryset().visible_to(self.request.user)


class FieldsBuiltOnceMixin:
    """For read-only ModelSerializers on hot paths: DRF introspects the model to build a
    ModelSerializer's fields on every instance (about a millisecond per single-object response,
    the largest cost of the 202 a create answers). Build them once per class; each instance gets
    a deep copy, as DRF gives each instance copies of its declared fields. Only for serializers
    whose fields depend on nothing but the class (not on the request, the context or settings)."""

    def get_fields(self):
        built = type(self).__dict__.get("_fields_built_once")
        if built is None:
            built = super().get_fields()
            type(self)._fields_built_once = built
        return copy.deepcopy(built)


class RejectUnknownFieldsMixin:
    """A field the client may not write (unknown, or read-only) is a 400, never silently ignored.
    Mix into any serializer that reads a request body (plain `Serializer`s included);
    `read_only_reasons` may say why a read-only field is (who else sets it)."""

    read_only_reasons: dict[str, str] = {}

    def to_internal_value(self, data):
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            refused = {
                name: [self.read_only_reasons.get(name, "This field is read-only.") if name in self.fields
                       else "Unknown field."]
                for name in data
                if name not in writable
            }
            if refused:
                raise serializers.ValidationError(refused)
        return super().to_internal_value(data)


class StrictModelSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    """The base for every writable model serializer (NetBox's ValidatedModelSerializer, stricter):
    unknown and read-only fields are refused (400), and the model's own `full_clean()` runs on the
    would-be instance, so API, admin and forms share one rule set (`Model.clean()`, field
    validators, unique constraints).

    On create, model fields the serializer does not write are set later by the view or service
    (owner, organization...), so they are excluded from `full_clean` unless a subclass supplies
    them through `instance_defaults()`."""

    def instance_defaults(self) -> dict:
        """Values the view will set on create (e.g. the owner), so `clean()` can see them."""
        return {}

    def validate(self, attrs):
        attrs = super().validate(attrs)
        model = self.Meta.model
        concrete = {field.name for field in model._meta.concrete_fields}
        plain = {name: value for name, value in attrs.items() if name in concrete}
        if self.instance is not None:
            candidate = copy.copy(self.instance)  # a failed check must leave the caller's instance alone
            exclude = None
        else:
            plain = {**self.instance_defaults(), **plain}
            candidate = model()
            exclude = sorted(concrete - set(plain))
        for name, value in plain.items():
            setattr(candidate, name, value)
        try:
            candidate.full_clean(exclude=exclude)
        except DjangoValidationError as exc:
            errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
            if "__all__" in errors:
                errors[api_settings.NON_FIELD_ERRORS_KEY] = errors.pop("__all__")
            raise serializers.ValidationError(errors) from None
        return attrs
