import posixpath

from django.core.exceptions import ValidationError


def validate_storage_root(value: str) -> None:
    """An absolute, already-normalised folder that is not `/` and has no `..` component."""
    if not value or "\x00" in value:
        raise ValidationError("Enter an absolute folder path.")
    if not value.startswith("/"):
        raise ValidationError("The storage folder must be an absolute path (start with /).")
    if ".." in value.split("/"):
        raise ValidationError("The storage folder must not contain '..'.")
    if posixpath.normpath(value) != value or value.startswith("//"):
        raise ValidationError(f"Write the storage folder in normal form: {posixpath.normpath(value)!r}.")
    if value == "/":
        raise ValidationError("The storage folder must not be the root folder /.")


def validate_labels(value) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValidationError('Labels must be an object of text values, e.g. {"gpu": "no", "tier": "fast"}.')
