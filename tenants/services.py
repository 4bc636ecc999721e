from datetime import timedelta

from django.db import transaction
from django.utils import timezone

import audit.services as audit
from audit.choices import Outcome

from .models import ApiToken, Membership, Organization, User, token_digest


@transaction.atomic
def issue_api_token(user: User, *, name: str, expires_in: timedelta | None) -> tuple[ApiToken, str]:
    """Create a token and return it with its raw key, which exists only in this return value."""
    raw = ApiToken.generate_raw()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=raw[:12],
        digest=token_digest(raw),
        expires_at=timezone.now() + expires_in if expires_in else None,
    )
    audit.record(actor=user, action="token.issue", target=token, change={"name": name, "prefix": token.prefix})
    return token, raw


@transaction.atomic
def revoke_api_token(token: ApiToken, *, actor: User) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record(actor=actor, action="token.revoke", target=token)
    return token


def authenticate_token(raw: str) -> ApiToken | None:
    """The usable token with this raw key, or None. Marks it used at most once a minute."""
    token = ApiToken.objects.usable().select_related("user").filter(digest=token_digest(raw)).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


@transaction.atomic
def update_organization(organization: Organization, *, actor: User, changes: dict) -> Organization:
    """Apply already-validated settings (idle timeout, placement policy, limits) to an organization."""
    changed = {name: value for name, value in changes.items() if getattr(organization, name) != value}
    if changed:
        for name, value in changed.items():
            setattr(organization, name, value)
        organization.save(update_fields=list(changed))
        audit.record(actor=actor, action="organization.update", target=organization, change=changed)
    return organization


def record_sign_in(*, user: User | None, username: str) -> None:
    """Audit a sign-in attempt: `user` is None when it failed, and then only the username tried is
    kept (never the password)."""
    if user is not None:
        audit.record(actor=user, action="user.sign_in", target=user)
    else:
        audit.record(actor=None, action="user.sign_in", outcome=Outcome.FAILURE,
                     message=f"failed sign-in as {username[:150]!r}")


def record_sign_out(user: User) -> None:
    audit.record(actor=user, action="user.sign_out", target=user)


def memberships_of(user: User):
    return Membership.objects.filter(user=user).select_related("organization")


def membership_in(user: User, organization: Organization) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, organization=organization).first()
