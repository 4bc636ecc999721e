import hashlib
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from config import counters
from config.proxies import client_network

from . import services
from .forms import ApiTokenForm, SwitchOrganizationForm
from .middleware import SESSION_KEY
from .models import ApiToken


# Failed sign-ins allowed per username and address in the window, before the page answers 429
# without checking the password (slows password guessing; with the cache down it does not apply).
SIGN_IN_ATTEMPTS = 10
SIGN_IN_WINDOW = 15 * 60


def _attempts_key(request) -> str:
    """Per username and client network (an IPv6 client's whole /64: see client_network)."""
    username = request.POST.get("username", "").strip().lower()
    network = client_network(request.META.get("REMOTE_ADDR", ""))
    return f"berth:signin:{network}:{hashlib.sha256(username.encode()).hexdigest()}"


class SignInView(auth_views.LoginView):
    """Django's sign-in page, with every attempt in the audit log and repeated failures throttled."""

    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        if (cache.get(_attempts_key(request)) or 0) >= SIGN_IN_ATTEMPTS:
            services.record_sign_in(user=None, username=request.POST.get("username", ""))
            context = self.get_context_data(form=self.get_form_class()(request), throttled=SIGN_IN_WINDOW // 60)
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)
        cache.delete(_attempts_key(self.request))
        services.record_sign_in(user=form.get_user(), username=form.get_user().get_username())
        return response

    def form_invalid(self, form):
        counters.count(_attempts_key(self.request), expires_in=SIGN_IN_WINDOW)
        services.record_sign_in(user=None, username=form.data.get("username", ""))
        return super().form_invalid(form)


class SignOutView(auth_views.LogoutView):
    def post(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            services.record_sign_out(request.user)
        return super().post(request, *args, **kwargs)


@login_required
@require_POST
def switch_organization(request):
    """Choose the organization the pages work in; only one the user belongs to (else 404)."""
    form = SwitchOrganizationForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("Choose an organization.")
    membership = next((m for m in request.memberships if m.organization_id == form.cleaned_data["organization"]), None)
    if membership is None:
        raise Http404("No such organization.")
    request.session[SESSION_KEY] = membership.organization_id
    target = form.cleaned_data["next"]
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        target = settings.LOGIN_REDIRECT_URL
    return redirect(target)


def _tokens_page(request, form, new_key: str = "", status: int = 200):
    tokens = ApiToken.objects.visible_to(request.user)
    return render(request, "tenants/api_tokens.html", {"tokens": tokens, "form": form, "new_key": new_key}, status=status)


@login_required
def api_tokens(request):
    """List, and create: the new key is rendered once in this response and never stored or shown again."""
    if request.method != "POST":
        return _tokens_page(request, ApiTokenForm())
    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        return _tokens_page(request, form, status=400)
    days = form.cleaned_data["expires_days"]
    _, raw = services.issue_api_token(
        request.user, name=form.cleaned_data["name"], expires_in=timedelta(days=days) if days else None
    )
    response = _tokens_page(request, ApiTokenForm(), new_key=raw)
    response["Cache-Control"] = "no-store"  # the key must not linger in a browser or proxy cache
    return response


@login_required
@require_POST
def revoke_api_token(request, pk):
    token = get_object_or_404(ApiToken.objects.visible_to(request.user), pk=pk)
    services.revoke_api_token(token, actor=request.user)
    messages.success(request, f"Token “{token.name}” is revoked.")
    return redirect("api-tokens")
