from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    AUDITOR = "auditor", "Auditor"


# Roles that manage the whole organization (its workspaces, members and policy).
MANAGING_ROLES = frozenset({Role.OWNER, Role.ADMIN})
# Roles that may read the organization's audit log.
AUDIT_READING_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.AUDITOR})
