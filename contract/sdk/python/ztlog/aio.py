"""AsyncClient: the Client's API for asyncio code.

Each call runs the blocking Client in a worker thread (asyncio.to_thread);
guarded_call awaits fn when it is a coroutine function and runs it on the
event loop, only after a verified allow.
"""

import asyncio
import inspect

from .client import Client
from .errors import Denied

__all__ = ["AsyncClient"]


class AsyncClient:
    """Same arguments as Client."""

    def __init__(self, *args, **kwargs):
        self.sync = Client(*args, **kwargs)

    @property
    def actor(self):
        return self.sync.actor

    async def decide(self, action, resource, args=None, broker=None, correlation_id=None, user_token=None):
        return await asyncio.to_thread(self.sync.decide, action, resource, args=args, broker=broker,
                                       correlation_id=correlation_id, user_token=user_token)

    async def guarded_call(self, action, resource, fn, args=None, broker=None, correlation_id=None, user_token=None):
        """Decide, then call fn(decision) only on a verified allow (awaited if it returns an awaitable)."""
        d = await self.decide(action, resource, args=args, broker=broker, correlation_id=correlation_id,
                              user_token=user_token)
        if not d.allowed or d.receipt is None or d.claims is None:
            raise Denied(decision=d)
        out = fn(d)
        if inspect.isawaitable(out):
            out = await out
        return out
