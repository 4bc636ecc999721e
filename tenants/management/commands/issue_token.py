from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from tenants.models import User
from tenants.services import issue_api_token


class Command(BaseCommand):
    help = "Issue an API token for USERNAME and print it (only its hash is stored; it cannot be shown again)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--expires-days", type=int, default=None, help="Days until it expires (default: never).")
        parser.add_argument("--name", default="command line", help="What the token is for.")

    def handle(self, *args, username, expires_days, name, **options):
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user named {username!r}.")
        if expires_days is not None and expires_days < 1:
            raise CommandError("--expires-days must be at least 1.")
        _, raw = issue_api_token(user, name=name, expires_in=timedelta(days=expires_days) if expires_days else None)
        self.stdout.write(raw)
