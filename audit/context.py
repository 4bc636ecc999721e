"""Who is asking, from where: set per request by the middleware, read by audit.record()."""

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    source_ip: str | None = None
    user_agent: str = ""


current = contextvars.ContextVar("berth_request_context", default=RequestContext())
