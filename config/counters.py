"""Counters in the shared cache, for limits every Berth process must see alike (sign-in attempts,
API requests)."""

from django.core.cache import cache


def count(key: str, *, expires_in: int) -> int | None:
    """Add one to the counter `key` and return its new value; a new counter expires `expires_in` s
    after its first count. None when the cache cannot count (it is down, or the key expired between
    the two calls): the caller's limit then does not apply."""
    cache.add(key, 0, expires_in)
    try:
        return cache.incr(key)
    except ValueError:
        return None
