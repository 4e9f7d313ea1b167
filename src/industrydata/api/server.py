"""The API served over HTTP by uvicorn, with the request head bounded while it is read.

uvicorn's default HTTP parser (httptools) buffers a request line and headers of any length;
four 64 MiB headers took the process from 250 MB to 1.27 GB. The h11 parser stops reading a
head longer than ``max_request_head_bytes`` (request line, headers, and so the URL, query
options and any single header): the client gets a 400 and the connection is closed, and the
memory held for one connection stays at the bound.

Logs: every record, uvicorn's access and error lines included, goes to stderr in the format
of ``INDUSTRYDATA_LOG_FORMAT`` (``observability.logs``).
"""

from __future__ import annotations

import os
from typing import Any

import uvicorn

from ..config import Settings
from ..observability import configure_logging, logging_config
from .app import create_app

__all__ = ["serve"]


def serve(settings: Settings, *, host: str, port: int, processes: int = 1) -> None:
    """Serve the API (embedded: with the scheduler and runs) on ``host:port`` until stopped.

    With several ``processes`` (production mode) uvicorn's supervisor starts each one, and
    each builds its app from the environment: the data dir travels there.
    """
    configure_logging(settings.log_format)  # before the service starts, which may log
    options: dict[str, Any] = dict(
        host=host,
        port=port,
        log_config=logging_config(settings.log_format),  # uvicorn applies it too, in each process
        log_level="info",
        http="h11",
        h11_max_incomplete_event_size=settings.max_request_head_bytes,
    )
    if processes == 1:
        uvicorn.run(create_app(settings), **options)
        return
    os.environ["INDUSTRYDATA_DATA_DIR"] = str(settings.data_dir)
    uvicorn.run(
        "industrydata.api.app:create_app_from_environment",
        factory=True,
        workers=processes,
        **options,
    )
