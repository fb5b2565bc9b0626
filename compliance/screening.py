"""The screening setup the platform runs with: which lists, which matcher settings."""

from __future__ import annotations

from compliance.lists import load_ofac
from compliance.matcher import Matcher
from payments.settings import Settings


def load_matcher(settings: Settings) -> Matcher:
    """The sanctions matcher over the configured OFAC list edition (loaded once per process)."""
    return Matcher([load_ofac(settings.sanctions_dir)])
