"""The kernel: settings, database, tables, ids, logging, redaction, the payload codec and the
audit chain. It imports nothing above it (an import-linter contract checks this)."""
