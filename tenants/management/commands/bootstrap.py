import os

from django.core.management.base import BaseCommand

from tenants.bootstrap import bootstrap


class Command(BaseCommand):
    help = (
        "Create what a fresh Berth needs: organization 'default', an administrator who owns it, the default "
        "placement policy and workspace image, and server 'local' when a Docker engine answers here. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("BERTH_ADMIN_USERNAME", "admin"),
                            help="Administrator username (env BERTH_ADMIN_USERNAME, default admin).")
        parser.add_argument("--password", default=os.environ.get("BERTH_ADMIN_PASSWORD", ""),
                            help="Administrator password (env BERTH_ADMIN_PASSWORD; default: generated and printed once).")
        parser.add_argument("--email", default=os.environ.get("BERTH_ADMIN_EMAIL", ""))

    def handle(self, *args, username, password, email, **options):
        report = bootstrap(username=username, password=password, email=email)
        for item in report.created:
            self.stdout.write(f"created {item}")
        if not report.created:
            self.stdout.write("nothing to create: Berth is already set up")
        self.stdout.write(report.local_server)
        if report.generated_password:
            self.stdout.write(self.style.WARNING(
                f"Administrator {username} password: {report.generated_password}\n"
                "It is shown only this once; change it after signing in."
            ))
