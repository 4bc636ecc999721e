from django.core.management.base import BaseCommand, CommandError

from audit.services import verify_chain


class Command(BaseCommand):
    help = "Check that no audit event was edited, deleted or reordered; name the first broken link."

    def handle(self, *args, **options):
        report = verify_chain()
        if not report.intact:
            where = f"event {report.broken_event_id}" if report.broken_event_id is not None else "the chain head"
            raise CommandError(
                f"Audit chain broken at {where}: {report.reason}. {report.checked} events before it are intact."
            )
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {report.checked} events verified."))
