"""structlog JSON logs with ids bound through contextvars, redacted (DESIGN §5, §8).

Standard-library loggers (uvicorn, temporalio, httpx) are rendered by the same processors,
so every line a process writes is one JSON object.
"""

from __future__ import annotations

import logging
import sys

import structlog

from kernel.redaction import redact_processor

_SHARED: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _no_result_rows(record: logging.LogRecord) -> bool:
    """Drop SQLAlchemy's DEBUG records: they print result rows (names, IBANs, addresses).

    Statement parameters are hidden by the engines themselves (`hide_parameters`, kernel/db.py);
    rows have no such switch, so they never pass the platform's handler, whatever level the
    `sqlalchemy.engine` logger is turned to.
    """
    return not (record.name.startswith("sqlalchemy.engine") and record.levelno < logging.INFO)


def configure_logging(level: int = logging.INFO) -> None:
    """Log JSON lines to stderr, from structlog and stdlib loggers alike."""
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                # last before rendering: nothing added later can carry an account number
                redact_processor,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    handler.addFilter(_no_result_rows)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # one line per outgoing HTTP request is noise, not signal
    logging.getLogger("httpx").setLevel(logging.WARNING)
