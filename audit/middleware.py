import uuid

from .context import RequestContext, current


class RequestContextMiddleware:
    """Gives every request an id (echoed as X-Request-ID) and records its address for audit events.

    The address is REMOTE_ADDR, which config.proxies sets to the client's behind trusted proxies."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = uuid.uuid4().hex
        token = current.set(
            RequestContext(
                request_id=request_id,
                source_ip=request.META.get("REMOTE_ADDR") or None,
                user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
            )
        )
        try:
            response = self.get_response(request)
        finally:
            current.reset(token)
        response["X-Request-ID"] = request_id
        return response
