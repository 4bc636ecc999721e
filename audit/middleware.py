import uuid

from config.proxies import canonical_address

from .context import RequestContext, current


class RequestContextMiddleware:
    """Gives every request an id (echoed as X-Request-ID) and records its address for audit events.

    The address is REMOTE_ADDR (the client's behind trusted proxies, see config.proxies) as the
    database prints it back, since the event's hash covers it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = uuid.uuid4().hex
        token = current.set(
            RequestContext(
                request_id=request_id,
                source_ip=canonical_address(request.META.get("REMOTE_ADDR") or ""),
                user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
            )
        )
        try:
            response = self.get_response(request)
        finally:
            current.reset(token)
        response["X-Request-ID"] = request_id
        return response
