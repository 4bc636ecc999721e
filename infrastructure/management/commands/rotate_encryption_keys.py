from django.core.management.base import BaseCommand, CommandError

from infrastructure import services
from infrastructure.crypto import DecryptionError


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret under the first BERTH_ENCRYPTION_KEYS key. Put the new key first, "
        "keep the old ones after it, run this, then remove the old keys."
    )

    def handle(self, *args, **options):
        try:
            changed = services.rotate_encryption_keys()
        except DecryptionError as exc:
            raise CommandError(f"A secret cannot be decrypted with the configured keys ({exc}); nothing was changed.")
        self.stdout.write(self.style.SUCCESS(f"{changed} secret(s) re-encrypted under the primary key."))
