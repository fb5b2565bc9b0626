"""Shared platform plumbing: settings, database, ids, logging, the ops CLI and the dev stack."""
