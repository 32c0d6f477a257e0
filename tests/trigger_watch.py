"""
Running an event trigger as a triggerer does, in the test's process: restarts included.

:class:`Watcher` runs a trigger rebuilt from its serialized form (:func:`rebuilt`), as the
triggerer does, on a private event loop; ``stop()`` is a triggerer restart. The ``watchers``
fixture (tests/conftest.py) starts them and stops every one after the test.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from airflow_provider_partner.compat import import_string


def list_requests(emulator: Any) -> int:
    """List requests the emulator has answered so far (each poll of a trigger is one)."""
    return int(emulator.stats()["requests"].get("list", 0))


def rebuilt(trigger: Any) -> Any:
    """The trigger as the triggerer gets it: serialized, through JSON, and built again."""
    classpath, kwargs = trigger.serialize()
    return import_string(classpath)(**json.loads(json.dumps(kwargs)))


class Watcher:
    """Runs one trigger instance as an asyncio task on a private loop, like a triggerer would."""

    def __init__(self, trigger: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.events = trigger.run()
        # Cancelling an async generator's __anext__ would end the generator: one pending request
        # for the next event is kept across calls instead.
        self.pending: asyncio.Future[Any] | None = None

    def _pending(self) -> asyncio.Future[Any]:
        if self.pending is None:
            self.pending = asyncio.ensure_future(self.events.__anext__(), loop=self.loop)
        return self.pending

    def next_event(self, timeout: float = 60) -> dict[str, Any]:
        pending = self._pending()
        event = self.loop.run_until_complete(asyncio.wait_for(asyncio.shield(pending), timeout))
        self.pending = None
        return dict(event.payload)

    def no_event_during_polls(self, emu: Any, polls: int) -> bool:
        """Let the trigger poll ``polls`` more times; True if it fired nothing meanwhile."""
        pending = self._pending()
        target = list_requests(emu) + polls

        async def watch() -> None:
            while list_requests(emu) < target and not pending.done():
                await asyncio.sleep(0.01)

        self.loop.run_until_complete(watch())
        return not pending.done()

    def stop(self) -> None:
        """A triggerer restart: the trigger's task is cancelled wherever it was."""
        if self.pending is not None:
            self.pending.cancel()
            self.loop.run_until_complete(asyncio.gather(self.pending, return_exceptions=True))
        self.loop.run_until_complete(self.events.aclose())
        self.loop.close()
