"""Compliance engines (KYC rules, sanctions screening): plain Python, no Temporal inside."""
