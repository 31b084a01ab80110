"""A small FastAPI application whose logs go to Kafka; served by ``fastapi_uvicorn.py``.

    uvicorn fastapi_app:app --log-config uvicorn_logging.json

The application only logs with :mod:`logging`; where the records go is the
business of ``uvicorn_logging.json``, which uvicorn loads before it imports
the application. ``KafkaHandler.emit`` never waits on Kafka, so logging
from an ``async def`` endpoint never holds up the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Header

log = logging.getLogger("shop.api")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    # After a graceful shutdown uvicorn ends the process by raising the signal
    # it received again, and a process killed by a signal runs no exit hooks:
    # the handler's flush at exit would not happen. Deliver what is buffered
    # now (bounded by the handler's close_timeout_ms), off the event loop: the
    # handler uvicorn_logging.json gives to "shop" is the one uvicorn's loggers use.
    for handler in logging.getLogger("shop").handlers:
        await asyncio.to_thread(handler.flush)


app = FastAPI(lifespan=lifespan)


@app.get("/items/{item_id}")
async def read_item(item_id: int, x_request_id: str = Header()) -> dict[str, int]:
    log.info("item %d read", item_id, extra={"request_id": x_request_id})
    return {"item_id": item_id}


@app.get("/boom")
async def boom() -> None:
    # Unhandled: uvicorn answers 500 and logs the traceback on "uvicorn.error".
    raise RuntimeError("the inventory service is down")
