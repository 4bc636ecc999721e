from .services import memberships_of

SESSION_KEY = "active_organization_id"


class ActiveOrganizationMiddleware:
    """Puts the signed-in user's memberships and chosen organization on the request (pages only).

    `request.organization` is None for a user without any membership."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.memberships = []
        request.organization = None
        request.membership = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            request.memberships = list(memberships_of(user))
            chosen = request.session.get(SESSION_KEY)
            match = next((m for m in request.memberships if m.organization_id == chosen), None)
            request.membership = match or (request.memberships[0] if request.memberships else None)
            request.organization = request.membership.organization if request.membership else None
        return self.get_response(request)
