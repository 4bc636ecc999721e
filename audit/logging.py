import logging
import re

# user:password@ in URLs, PEM blocks and Berth tokens never reach a log line.
_PATTERNS = [
    (re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s:]+(:[^/@\s]*)?@"), r"\g<scheme>***@"),
    (re.compile(r"-----BEGIN [A-Z ]+-----.*?-----END [A-Z ]+-----", re.S), "[redacted key material]"),
    (re.compile(r"berth_[A-Za-z0-9_-]{20,}"), "berth_[redacted]"),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    """Scrubs credentials from the formatted message (AWX redact.py does the same for URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
