"""The ops layer: the `payments` CLI, the dev stack, embedded PostgreSQL, migrations and history
tools. Nothing below it imports it."""
